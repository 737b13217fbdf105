"""Before a run touches `--out`: it can be written, and nothing there but a dataset of ours is ever replaced."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from omni_caption.file_kinds import is_media, is_parquet_file, special_file_kind
from omni_caption.schemas import NotADataset, PartStore



class OutputPathError(OSError):
    pass


# Names of the formats `export` and `query` write: a run's Parquet under such a name opens in no reader of it.
OTHER_FORMATS = {".jsonl": "export {parquet} --format jsonl --out {out}",
                 ".json": "export {parquet} --format jsonl --out {out}",
                 ".ndjson": "export {parquet} --format jsonl --out {out}",
                 ".srt": "export {parquet} --format srt --out {out}",
                 ".vtt": "export {parquet} --format vtt --out {out}",
                 ".csv": "export {parquet} --format csv --out {out}"}


def check_output_path(out: Path) -> None:
    kind = special_file_kind(out)
    if kind:  # renamed over, /dev/null would become a regular file (for root, who may)
        raise OutputPathError(f"--out {out} is {kind}, not a dataset: a run writes a .parquet file (with its .parts/ "
                              "and .lock beside it) or a folder/ of shards")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"--out {out}: folder {parent} does not exist")
    try:  # really try: permission bits say nothing for root, read-only mounts, or full disks
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"--out {out}: folder {parent} is not writable ({exc.strerror})") from exc


def check_output(store: PartStore, overwrite: bool) -> None:
    """`--out` can be written, and what it holds already is a dataset of ours (else it would be replaced).

    Not even `--overwrite` replaces a file that is not Parquet: `omni-caption talks/ --out talks/a.wav
    --overwrite`, one slip of the shell's history, replaced a recording with the captions of the others."""
    out = store.out_path
    if not store.sharded and is_media(out):
        raise OutputPathError(f"--out {out} is named as a recording ({out.suffix}), not a dataset: name it "
                              ".parquet, or give a folder/ for shards")
    how = OTHER_FORMATS.get(out.suffix.lower()) if not store.sharded else None
    if how:
        parquet = out.with_suffix(".parquet")
        raise OutputPathError(f"--out {out}: a run writes Parquet, which that name would pass off as {out.suffix}; "
                              f"name it {parquet.name} (or give a folder/ for shards), then: omni-caption "
                              + how.format(parquet=parquet, out=out))
    check_output_path(out)
    others = store.foreign_entries()
    if others:  # `--out recordings`, meant as a file name, would put shards among the recordings
        listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise OutputPathError(f"--out {out}: the folder holds other things than shards ({listed}); a "
                              "sharded dataset needs a folder of its own: give a new or empty folder, or a .parquet "
                              "file")
    if not store.sharded and out.is_file() and out.stat().st_size and not is_parquet_file(out):
        raise OutputPathError(f"--out {out} is not a Parquet file (another kind of file): give another --out; "
                              "--overwrite replaces only a dataset")
    if not overwrite:
        try:
            store.check_outputs()
        except NotADataset as exc:
            raise OutputPathError(f"--out {out}: {exc}; give another --out, or add --overwrite "
                                  f"to replace it") from exc
