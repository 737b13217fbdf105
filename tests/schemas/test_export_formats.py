import io
import json
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from omni_caption.schemas.export_formats import HF_METADATA_KEY, export_hf, export_jsonl, export_subtitles
from tests.conftest import finishes_within
from tests.schemas.sample_dataset import sample_rows, write_sample


@pytest.fixture
def dataset(tmp_path):
    return write_sample(tmp_path / "d.parquet")


def flac_bytes(seconds: float = 0.5, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    sf.write(buffer, (0.1 * np.sin(2 * np.pi * 440 * t)).astype("float32"), rate, format="FLAC")
    return buffer.getvalue()


@pytest.fixture
def load_hf(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def load(data_files):
        return datasets.load_dataset("parquet", data_files=data_files, split="train",
                                     cache_dir=str(tmp_path / "hf-cache"))
    return load


def test_jsonl_one_object_per_row(dataset, tmp_path):
    result = export_jsonl(dataset, tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert result.rows == len(lines) == 5
    rows = [json.loads(line) for line in lines]
    assert rows[0]["caption"] == "A dog barks loudly near the river." and rows[0]["flags"] == ["truncated:caption"]
    assert rows[0]["models"]["caption"].endswith("@abc") and rows[4]["status"] == "error"
    assert set(rows[0]) == set(pq.read_schema(dataset).names)


def test_jsonl_keeps_audio_path_not_bytes(tmp_path):
    rows = [replace(sample_rows()[0], audio={"bytes": flac_bytes(), "path": "a.wav#0"})]
    path = write_sample(tmp_path / "d.parquet", rows)
    export_jsonl(path, tmp_path / "out.jsonl")
    assert json.loads((tmp_path / "out.jsonl").read_text())["audio"] == {"path": "a.wav#0"}


def test_hf_without_audio_loads_and_drops_the_empty_column(dataset, tmp_path, load_hf):
    result = export_hf(dataset, tmp_path / "hf.parquet")
    assert HF_METADATA_KEY not in pq.read_schema(result.paths[0]).metadata
    ds = load_hf(str(result.paths[0]))
    assert ds.num_rows == 5 and "audio" not in ds.column_names
    assert ds[0]["caption"] == "A dog barks loudly near the river." and ds[0]["flags"] == ["truncated:caption"]
    assert ds[4]["status"] == "error" and ds[0]["scores"]["caption_tokens"] is None


def test_hf_with_embedded_audio_decodes_as_audio(tmp_path, load_hf):
    from datasets import Audio

    clip = flac_bytes()
    rows = [replace(r, audio={"bytes": clip, "path": f"{r.source_path}#{r.segment_index}"}) if r.status == "ok" else r
            for r in sample_rows()]
    source = write_sample(tmp_path / "d.parquet", rows)
    assert isinstance(load_hf(str(source)).features["audio"], Audio)  # the writer itself sets the metadata key
    result = export_hf(source, tmp_path / "hf.parquet")
    ds = load_hf(str(result.paths[0]))
    assert isinstance(ds.features["audio"], Audio)
    samples = ds[0]["audio"].get_all_samples()
    assert samples.sample_rate == 16_000 and samples.data.shape[-1] == 8_000
    assert ds.cast_column("audio", Audio(decode=False))[1]["audio"]["bytes"] == clip
    assert ds[4]["audio"] is None


def test_hf_folder_uses_hub_layout_per_shard(tmp_path, load_hf):
    rows = sample_rows()
    shards = tmp_path / "shards"
    shards.mkdir()
    write_sample(shards / "shard-00000.parquet", rows[:3])
    write_sample(shards / "shard-00001.parquet", rows[3:])
    result = export_hf(shards, tmp_path / "hf")
    assert [p.relative_to(tmp_path / "hf").as_posix() for p in result.paths] == [
        "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "README.md"]
    assert load_hf(str(tmp_path / "hf" / "data" / "*.parquet")).num_rows == result.rows == 5


def test_an_hf_folder_carries_a_dataset_card_naming_its_files_models_and_flags(dataset, tmp_path):
    """Uploaded as exported, the Hub said the dataset had no card: not which models wrote it, nor what its flags
    count."""
    import glob

    import datasets
    import yaml

    from tests.schemas.sample_dataset import CAPTIONER, INSTRUCT

    export_hf(dataset, tmp_path / "hf")
    card = (tmp_path / "hf" / "README.md").read_text()
    _, header, body = card.split("---\n", 2)
    meta = yaml.safe_load(header)
    (config,) = meta["configs"]
    (files,) = config["data_files"]
    assert files["split"] == "train" and glob.glob(str(tmp_path / "hf" / files["path"]))
    assert meta["size_categories"] == ["n<1K"] and "audio-captioning" in meta["tags"]
    assert body.startswith("<!-- written by omni-caption") and "\n# Captions and transcripts of 3 recordings" in body
    assert f"| caption | {CAPTIONER} |" in body and f"| transcript | {INSTRUCT} |" in body
    flags = dict(datasets.load_dataset("parquet", data_files=str(tmp_path / "hf" / "data" / "*.parquet"),
                                       split="train").to_pandas().explode("flags")["flags"].value_counts())
    assert all(f"| {flag} | {count} |" in body for flag, count in flags.items())
    assert "Nonsense" not in card


def test_an_hf_folder_exported_again_holds_only_the_new_files_and_keeps_a_card_the_user_wrote(dataset, tmp_path):
    """Exported again from a dataset of fewer files, the folder kept the old export's extra shards: the Hub's glob
    read them as more rows, or `load_dataset` failed on their other columns."""
    import datasets

    shards = tmp_path / "shards"
    shards.mkdir()
    write_sample(shards / "shard-00000.parquet", sample_rows()[:3])
    write_sample(shards / "shard-00001.parquet", sample_rows()[3:])
    out = tmp_path / "hf"
    export_hf(shards, out)
    (out / "data" / "notes.parquet.txt").write_text("mine")  # not an export's: left alone
    result = export_hf(dataset, out)
    assert sorted(p.name for p in (out / "data").iterdir()) == ["notes.parquet.txt", "train-00000-of-00001.parquet"]
    assert datasets.load_dataset(str(out), split="train").num_rows == result.rows == 5
    (out / "README.md").write_text("# Our meetings\n\nLicence: internal.\n")
    result = export_hf(dataset, out)
    assert (out / "README.md").read_text() == "# Our meetings\n\nLicence: internal.\n"
    assert result.skipped == [f"{out / 'README.md'}: kept, as a card omni-caption did not write (it lacks the line "
                              f"that marks the cards omni-caption writes)"]


def test_the_card_of_a_tiny_random_dataset_says_its_text_is_noise():
    from omni_caption.schemas.dataset_card import dataset_card, size_category
    from omni_caption.schemas.dataset_info import DatasetSummary

    summary = DatasetSummary(files=["x.parquet"], schema_versions=["3"], tool_versions=["0.1.0"], audio_hours=0.01,
                             recordings=1, recordings_ok=1, recordings_error=0, recordings_partial=0, segments=2,
                             flagged_segments=0, models={"caption": ["omni-caption/tiny-random@local-1"]})
    assert "**Nonsense:**" in dataset_card(summary, 2, "data/*.parquet", has_audio=False)
    # The Hub's own classes, which its YAML validation takes and no other.
    assert [size_category(n) for n in (0, 999, 1000, 10**8, 10**12)] == ["n<1K", "n<1K", "1K<n<10K", "100M<n<1B",
                                                                         "n>1T"]


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_one_file_per_ok_recording(dataset, tmp_path, fmt):
    result = export_subtitles(dataset, tmp_path / "subs", fmt)
    assert sorted(p.name for p in result.paths) == [f"a.{fmt}", f"talks__b.{fmt}"]  # bad.mp3 failed: no file
    text = (tmp_path / "subs" / f"a.{fmt}").read_text()
    marker = "," if fmt == "srt" else "."
    assert f"00:00:15{marker}000 --> 00:00:30{marker}000\nBirds sing in the morning." in text  # caption fallback
    assert "Hey, stop barking!" in text and "A dog barks" not in text  # the transcript wins
    assert result.rows == 4
    if fmt == "vtt":
        assert text.startswith("WEBVTT\n\n")
        assert "<v SPEAKER_00>Welcome" in (tmp_path / "subs" / "talks__b.vtt").read_text()
    else:
        assert text.startswith("1\n00:00:00,000 --> 00:00:15,000\n")


def test_an_out_named_as_a_subtitle_file_is_that_file_for_one_recording(dataset, tmp_path):
    """`--format srt --out talk.srt` made a folder talk.srt/ holding talk.srt's cues under another name."""
    one = write_sample(tmp_path / "one.parquet", [r for r in sample_rows() if r.source_path == "a.wav"])
    result = export_subtitles(one, tmp_path / "talk.SRT", "srt")
    assert result.paths == [tmp_path / "talk.SRT"] and (tmp_path / "talk.SRT").is_file()
    assert (tmp_path / "talk.SRT").read_text() == export_subtitles(one, tmp_path / "subs", "srt").paths[0].read_text()
    with pytest.raises(ValueError, match=rf"^--out {tmp_path / 'all.vtt'} is one .vtt file, but 2 recordings have "
                                         "rows: give a folder, for one .vtt per recording$"):
        export_subtitles(dataset, tmp_path / "all.vtt", "vtt")
    with pytest.raises(ValueError, match=r"is named as .srt, but --format vtt writes .vtt$"):
        export_subtitles(one, tmp_path / "talk.srt", "vtt")
    assert not (tmp_path / "all.vtt").exists() and not (tmp_path / "talk.srt").exists()


def test_a_recording_named_to_the_file_name_limit_exports(tmp_path):
    """The subtitle file fits, and so must the temp file written beside it first (a dot, a token, .tmp)."""
    name = "é" * 121 + ".wav"  # 246 bytes: its .srt is too, its temp name was 264
    rows = [replace(r, source_path=name) if r.source_path == "a.wav" else r for r in sample_rows()]
    dataset = write_sample(tmp_path / "long.parquet", rows)
    result = export_subtitles(dataset, tmp_path / "subs", "srt")
    assert sorted(p.name for p in result.paths) == sorted(["é" * 121 + ".srt", "talks__b.srt"])
    assert sorted(p.name for p in (tmp_path / "subs").iterdir()) == sorted(p.name for p in result.paths)


def test_failed_export_leaves_no_partial_file(dataset, tmp_path, monkeypatch):
    import omni_caption.schemas.export_formats as module

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "to_srt", boom)
    with pytest.raises(OSError):
        export_subtitles(dataset, tmp_path / "subs", "srt")
    assert list((tmp_path / "subs").iterdir()) == []


# The columns of schema v1, the first release: files written then must export in today's schema.
V1_COLUMNS = ["recording_id", "source_path", "source_sha256", "recording_duration_s", "segment_index", "start_s",
              "end_s", "speaker", "speech_ratio", "caption", "transcript", "language", "reasoning", "answer",
              "summary", "summary_reasoning", "summary_audio_path", "flags", "scores", "models", "prompt_version",
              "config_hash", "audio", "status", "error"]
V1_SCORES = ["caption_avg_logprob", "caption_tokens", "transcript_avg_logprob", "transcript_tokens",
             "reasoning_avg_logprob", "reasoning_tokens", "compression_ratio", "chars_per_s"]


def test_hf_upgrades_files_of_older_schema_versions(tmp_path, load_hf):
    import pyarrow as pa

    from omni_caption.schemas import SEGMENT_SCHEMA, rows_to_table

    scores = pa.struct([f for f in SEGMENT_SCHEMA.field("scores").type if f.name in V1_SCORES])
    v1_schema = pa.schema([pa.field(n, scores) if n == "scores" else SEGMENT_SCHEMA.field(n) for n in V1_COLUMNS],
                          metadata={b"omni_caption.schema_version": b"1"})
    rows = rows_to_table(sample_rows()).to_pylist()
    old = [{k: ({s: v[s] for s in V1_SCORES} if k == "scores" else v) for k, v in r.items() if k in V1_COLUMNS}
           for r in rows]
    pq.write_table(pa.Table.from_pylist(old, schema=v1_schema), tmp_path / "v1.parquet")
    result = export_hf(tmp_path / "v1.parquet", tmp_path / "hf.parquet")
    assert pq.read_schema(result.paths[0]).names == [n for n in SEGMENT_SCHEMA.names if n != "audio"]
    ds = load_hf(str(result.paths[0]))
    assert ds.num_rows == 5 and ds[0]["caption"] == "A dog barks loudly near the river."



@pytest.mark.parametrize("export", [
    lambda dataset, out: export_jsonl(dataset, out / "out.jsonl"),
    lambda dataset, out: export_hf(dataset, out / "hf.parquet"),
    lambda dataset, out: export_hf(dataset, out / "hf"),
    lambda dataset, out: export_subtitles(dataset, out / "subs", "srt"),
], ids=["jsonl", "hf-file", "hf-folder", "srt"])
def test_exports_get_the_mode_the_umask_gives_not_0600(dataset, tmp_path, export):
    import os

    previous = os.umask(0o027)
    try:
        result = export(dataset, tmp_path / "out")
    finally:
        os.umask(previous)
    assert result.paths and {p.stat().st_mode & 0o777 for p in result.paths} == {0o640}


def test_a_pipe_or_a_link_given_as_the_output_is_written_into_not_replaced(dataset, tmp_path):
    """--out /dev/stdout (a link to a pipe) or /dev/null: a rename would replace the link or the device node."""
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the reading end, as a shell pipe has it open
    try:
        finishes_within(30, lambda: export_jsonl(dataset, fifo), "the export waited on the pipe")
        received = os.read(reader, 1 << 20)
    finally:
        os.close(reader)
    assert fifo.is_fifo() and len(received.decode().splitlines()) == len(sample_rows())
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    export_jsonl(dataset, link)
    assert link.is_symlink() and len(target.read_text().splitlines()) == len(sample_rows())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet", "elsewhere.jsonl", "link.jsonl", "pipe"]
