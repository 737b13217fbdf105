"""Resume keys are remembered by stat, so a resumed run does not read every input again."""

from __future__ import annotations

import hashlib
import os
import sqlite3

from omni_caption.pipelines.discover import SourceFile
from omni_caption.pipelines.file_hashes import FileHashes, resume_keys

OLD_NS = 1_600_000_000 * 10**9  # settled long ago: kept


def source(path, content: bytes, mtime_ns: int = OLD_NS) -> SourceFile:
    path.write_bytes(content)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return SourceFile(path, path.name)


def test_a_settled_file_is_read_once_across_runs(tmp_path):
    db = tmp_path / "cache" / "hashes.sqlite3"
    files = [source(tmp_path / f"{i}.wav", bytes([i]) * 1000) for i in range(3)]
    expected = [hashlib.sha256(bytes([i]) * 1000).hexdigest() for i in range(3)]
    first = FileHashes(db)
    assert [first.sha256(f) for f in files] == expected and first.read == 3
    second = FileHashes(db)  # another run, while the first is still open: each hash was committed at once
    assert [second.sha256(f) for f in files] == expected and second.read == 0


def test_a_changed_file_is_read_again_even_at_the_same_size(tmp_path):
    db = tmp_path / "hashes.sqlite3"
    path = tmp_path / "a.wav"
    hashes = FileHashes(db)
    before = hashes.sha256(source(path, b"x" * 100))
    after = hashes.sha256(source(path, b"y" * 100, mtime_ns=OLD_NS + 1))  # one nanosecond later, same size
    assert before != after == hashlib.sha256(b"y" * 100).hexdigest() and hashes.read == 2


def test_a_file_changed_just_now_is_not_kept(tmp_path):
    db = tmp_path / "hashes.sqlite3"
    path = tmp_path / "recording_in_progress.wav"
    path.write_bytes(b"z" * 100)  # its mtime is now: it may change again within the clock's tick
    FileHashes(db).sha256(SourceFile(path, path.name))
    assert sqlite3.connect(db).execute("SELECT count(*) FROM files").fetchone() == (0,)


def test_unreadable_files_and_an_unusable_cache_cost_nothing_but_speed(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"")
    files = [source(tmp_path / "a.wav", b"a"), SourceFile(tmp_path / "gone.wav", "gone.wav")]
    keys = resume_keys(files, blocker / "hashes.sqlite3")  # the cache folder cannot be made
    assert keys == {"a.wav": hashlib.sha256(b"a").hexdigest(), "gone.wav": "path:gone.wav"}
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"this is not a database" * 100)
    assert resume_keys(files, damaged) == keys


def test_a_name_that_is_not_utf8_is_kept_too(tmp_path):
    raw = os.fsencode(tmp_path) + b"/r\xe9union.wav"
    path = tmp_path / os.fsdecode(b"r\xe9union.wav")
    assert os.fsencode(path) == raw
    db = tmp_path / "hashes.sqlite3"
    FileHashes(db).sha256(source(path, b"latin-1"))
    again = FileHashes(db)
    assert again.sha256(SourceFile(path, "r\\xe9union.wav")) == hashlib.sha256(b"latin-1").hexdigest()
    assert again.read == 0
