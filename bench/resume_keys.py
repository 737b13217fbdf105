"""The wait before a run starts: every input's sha256 (its resume key), first run vs a resumed one.

    python bench/resume_keys.py [--files 10] [--minutes 40] [--json FILE]

Writes `--files` WAVs of `--minutes` each, 48 kHz 16-bit stereo as a field
recorder writes them (11 MB a minute, 440 MB for 40 minutes), with their
modification time set an hour back (an archive), then times the resume keys
three ways:

- read: every file hashed, no cache (what every run did before the cache);
- first: the same with the cache (file-hashes.sqlite3), which it fills;
- resumed: a second run, answered from the cache.

The page cache stays warm (dropping it needs root outside a container), so
`read` is the best case: from a cold disk or a network share it is slower.
Prints seconds and MB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from omni_caption.pipelines.discover import SourceFile
from omni_caption.pipelines.file_hashes import resume_keys

RECORDER_BYTES_PER_MINUTE = 48_000 * 2 * 2 * 60


def write_archive(folder: Path, files: int, minutes: float) -> list[SourceFile]:
    sources = []
    size = int(RECORDER_BYTES_PER_MINUTE * minutes)
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for i in range(files):
        path = folder / f"field_{i:03d}.wav"
        with open(path, "wb") as file:
            for _ in range(0, size, 1 << 24):
                file.write(os.urandom(min(1 << 24, size - file.tell())))
        os.utime(path, ns=(an_hour_ago, an_hour_ago))
        sources.append(SourceFile(path, path.name))
    return sources


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="resume-keys-") as tmp:
        folder = Path(tmp)
        sources = write_archive(folder, args.files, args.minutes)
        megabytes = sum(s.path.stat().st_size for s in sources) / 1e6
        db = folder / "cache" / "file-hashes.sqlite3"
        results = {"files": args.files, "minutes_each": args.minutes, "megabytes": round(megabytes),
                   "read_s": timed(lambda: resume_keys(sources, None)),
                   "first_s": timed(lambda: resume_keys(sources, db)),
                   "resumed_s": timed(lambda: resume_keys(sources, db)),
                   "machine": f"{platform.node()} ({os.cpu_count()} CPUs)"}
    print("\n".join([f"{args.files} WAVs of {args.minutes:g} min, {megabytes:.0f} MB in all"] + [
        f"  {way:<8} {results[way + '_s']:8.3f} s  {megabytes / results[way + '_s']:10.0f} MB/s"
        for way in ("read", "first", "resumed")]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
