"""Inputs that cannot be captioned (corrupt, unreadable, broken links, named pipes) are one error row each, and
the run goes on."""

import errno
import shutil

import duckdb
import numpy as np
import pytest

from omni_caption.pipelines import run_corpus
from tests.conftest import EXAMPLES, finishes_within, make_tone
from tests.pipelines.run_helpers import tiny_run_options as options


@pytest.mark.parametrize("name,content", [
    ("empty.wav", b""),
    ("noise.flac", bytes(np.random.default_rng(3).integers(0, 256, 8192, dtype=np.uint8))),
    ("text.mp3", b"definitely not an mp3\n" * 10),
    ("truncated.wav", None),
])
def test_corrupt_inputs_become_one_error_row_each(tmp_path, cache_dir, tiny_dir, name, content):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(EXAMPLES / "field" / "voice_memo.m4a", folder)
    bad = folder / name
    if content is None:  # a RIFF header that promises data, cut off after 44 bytes
        import soundfile as sf

        sf.write(bad, np.zeros(16000, dtype=np.float32), 16000)
        bad.write_bytes(bad.read_bytes()[:40])
    else:
        bad.write_bytes(content)
    out = tmp_path / "out.parquet"
    summary = run_corpus([folder], out, options(cache_dir), show_progress=False)
    rows = duckdb.sql(f"SELECT source_path, status, error FROM '{out}' WHERE source_path = '{name}'").fetchall()
    assert len(rows) == 1 and rows[0][1] == "error" and rows[0][2] and "\n" not in rows[0][2]
    assert summary.ok == 1 and summary.errors == 1


def test_unreadable_file_is_an_error_row(tmp_path, cache_dir, tiny_dir, monkeypatch):
    # Permission bits do not stop root (CI runs as root), so the read error is injected.
    from omni_caption.pipelines import SourceFile

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(EXAMPLES / "field" / "river_morning.flac", folder / "locked.flac")
    shutil.copy(EXAMPLES / "field" / "voice_memo.m4a", folder)
    real_sha256 = SourceFile.sha256

    def sha256(self, *args):
        if self.path.name == "locked.flac":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_sha256(self, *args)

    monkeypatch.setattr(SourceFile, "sha256", sha256)
    out = tmp_path / "o.parquet"
    summary = run_corpus([folder], out, options(cache_dir), show_progress=False)
    assert summary.errors == 1 and summary.ok == 1
    (error,) = duckdb.sql(f"SELECT error FROM '{out}' WHERE status = 'error'").fetchone()
    assert error == "cannot read file: Permission denied"


def test_a_latin1_name_is_captioned_and_a_broken_link_is_an_error_row(tmp_path, cache_dir, tiny_dir):
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    latin1 = os.fsencode(folder) + b"/r\xe9union.flac"
    shutil.copy(EXAMPLES / "field" / "river_morning.flac", latin1)
    (folder / "moved.wav").symlink_to(folder / "elsewhere.wav")
    out = tmp_path / "o.parquet"
    summary = run_corpus([folder], out, options(cache_dir), show_progress=False)
    assert (summary.ok, summary.errors) == (1, 1)
    rows = dict(duckdb.sql(f"SELECT source_path, any_value(coalesce(error, status)) FROM '{out}' GROUP BY 1").fetchall())
    assert rows == {"r\\xe9union.flac": "ok",
                    "moved.wav": f"broken symbolic link: its target {folder / 'elsewhere.wav'} does not exist"}


def test_a_named_pipe_named_like_a_recording_is_an_error_row_not_a_run_that_waits_for_ever(tmp_path, cache_dir,
                                                                                        tiny_dir):
    """Opening a pipe (to hash or decode it) waits for a writer: found in a folder, listed, or given by name."""
    import os

    from omni_caption.pipelines.run_preview import preview_run

    folder = tmp_path / "in"
    folder.mkdir()
    make_tone(folder / "tone.wav", seconds=3.0)
    os.mkfifo(folder / "pipe.wav")
    os.mkfifo(tmp_path / "listed.flac")
    os.mkfifo(tmp_path / "given.mp3")
    out = tmp_path / "o.parquet"

    def preview_then_run():
        inputs, listed = [folder, tmp_path / "given.mp3"], [str(tmp_path / "listed.flac")]
        return (preview_run(inputs, out, options(cache_dir), listed=listed),
                run_corpus(inputs, out, options(cache_dir), show_progress=False, listed=listed))

    preview, summary = finishes_within(120, preview_then_run, hangs="the run waits on a named pipe")
    assert (summary.ok, summary.errors) == (1, 3)
    why = "cannot read file: it is a named pipe, not a regular file"
    rows = dict(duckdb.sql(f"SELECT source_path, any_value(coalesce(error, status)) FROM '{out}' GROUP BY 1").fetchall())
    assert rows == {"tone.wav": "ok", "pipe.wav": why, "given.mp3": why, str(tmp_path / "listed.flac"): why}
    assert sorted(preview.unreadable) == sorted(f"{path}: {why}" for path in rows if path != "tone.wav")
