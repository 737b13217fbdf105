"""The resume key of every input file, remembered between runs.

A run keys each recording by its file's sha256 (a moved or renamed file is
the same recording), so it reads every input once before any work starts.
For a WAV archive that is the disk's whole content: about 1.2 GB/s here
with the page cache warm, far less from a cold disk or a network share, and
a resumed run paid it again. The hashes are kept in a small SQLite file in
the cache folder, by real path, size, modification time and inode, as
rsync and git judge a file unchanged; a file that changes any of them is
read again.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from omni_caption.schemas.source_names import stored_name

from .discover import SourceFile
from .progress import progress_bar

HASHES_FILE = "file-hashes.sqlite3"
# A file changed this recently may change again within the same clock tick with the same size, which its
# stat would not show ("racy git"): its hash is used but not kept. A recording being written stays unkept too.
_SETTLED_NS = 2_000_000_000


class FileHashes:
    """sha256 of files by their stat, in an SQLite file (None, or a file that cannot be opened: no memory)."""

    def __init__(self, db_path: Path | None):
        self._db = None
        if db_path is not None:
            try:
                db_path.parent.mkdir(parents=True, exist_ok=True)
                # Each hash is committed at once, so another run sharing the cache never waits long.
                self._db = sqlite3.connect(db_path, timeout=5, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, "
                                 "mtime_ns INTEGER, inode INTEGER, sha256 TEXT)")
            except (OSError, sqlite3.Error):  # a read-only or damaged cache costs speed, never the run
                self.close()
        self.read = 0  # files whose bytes were read this time

    def sha256(self, source: SourceFile) -> str:
        """The file's sha256; OSError if it cannot be read."""
        stat = os.stat(source.path)
        real = stored_name(os.path.realpath(source.path))  # SQLite text must be UTF-8, as Parquet's
        if self._db is not None:
            try:
                row = self._db.execute("SELECT sha256 FROM files WHERE path = ? AND size = ? AND mtime_ns = ? "
                                       "AND inode = ?", (real, stat.st_size, stat.st_mtime_ns, stat.st_ino)).fetchone()
            except sqlite3.Error:
                row = None
            if row:
                return row[0]
        digest = source.sha256()
        self.read += 1
        if self._db is not None and time.time_ns() - stat.st_mtime_ns > _SETTLED_NS:
            try:
                self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                                 (real, stat.st_size, stat.st_mtime_ns, stat.st_ino, digest))
            except sqlite3.Error:  # busy past the timeout, or a full disk: this hash is just not kept
                pass
        return digest

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def resume_keys(sources: Sequence[SourceFile], db_path: Path | None, show_progress: bool = False) -> dict[str, str]:
    """Per source path, its resume key: the file's sha256, or `path:<source_path>` if it cannot be read."""
    hashes = FileHashes(db_path)
    keys = {}
    try:
        with progress_bar(len(sources), "reading inputs (sha256)", "file", "files",
                          enabled=show_progress and bool(sources), leave=False) as bar:
            for source in sources:
                try:
                    keys[source.source_path] = hashes.sha256(source)
                except OSError:
                    keys[source.source_path] = f"path:{source.source_path}"
                bar.update(1)
    finally:
        hashes.close()
    return keys


def hashes_file(cache_dir: Path | None) -> Path:
    """Where the hashes are kept: in the cache folder (--cache-dir, else omni_caption.cache_home)."""
    from omni_caption.model import default_cache_dir

    return (cache_dir or default_cache_dir()) / HASHES_FILE
