"""Find the recordings under the input paths."""

from __future__ import annotations

import codecs
import errno
import hashlib
import io
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from omni_caption.file_kinds import is_media, special_file_kind
from omni_caption.schemas.source_names import stored_name

VOICE_JOURNAL = ".omni-caption-voiced.jsonl"  # `speak` keeps it in the folder of the WAVs it writes


class InputPathError(FileNotFoundError):
    pass


class NoRecordingsFound(InputPathError):
    """The inputs hold no recording at all: said, and nothing written."""


def ignored_line(ignored: Counter) -> str | None:
    """'12 files of other kinds (.txt 9, .jpg 3)', the commonest five kinds, or None if there were none."""
    if not ignored:
        return None
    total = sum(ignored.values())
    kinds = ", ".join(f"{ext} {n}" for ext, n in ignored.most_common(5)) + (", ..." if len(ignored) > 5 else "")
    return f"{total} file{'s' if total != 1 else ''} of other kinds ({kinds}), not read"


def decode_file_list(data: bytes) -> list[str]:
    """The paths of a `--files-from` list as its bytes: UTF-8 (a name that is not keeps its bytes as
    surrogate escapes, as the file system gives it), or UTF-16 where it opens with a byte-order mark, as
    PowerShell's `>` and Notepad write a list: read as UTF-8, every other byte was a NUL."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="surrogateescape")
    else:
        text = data.decode("utf-8-sig", errors="surrogateescape")
    return read_file_list(io.StringIO(text, newline=""))  # its lines as a file gives them, ends kept


def read_file_list(lines: Iterable[str]) -> list[str]:
    """The paths of a `--files-from` list: one per line; blank lines and `#` comments are skipped.

    A list holding NUL characters is one name per NUL, each taken whole (`find -print0`, `git ls-files -z`):
    made so that names with newlines in them pass, it has no comments. Read by lines, it was one path with
    NULs in it, and the run stopped on 'embedded null byte'."""
    lines = list(lines)
    if any("\0" in line for line in lines):
        return [entry for entry in "".join(lines).split("\0") if entry]
    entries = (line.rstrip("\r\n") for line in lines)
    return [entry for entry in entries if entry.strip() and not entry.lstrip().startswith("#")]


@dataclass(frozen=True)
class SourceFile:
    path: Path  # on disk
    source_path: str  # as stored: relative to the input root it was found under, always valid UTF-8

    def sha256(self, block_size: int = 1 << 20) -> str:
        special = special_file_kind(self.path)
        if special:
            raise OSError(errno.EINVAL, f"it is {special}, not a regular file")
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            while block := handle.read(block_size):
                digest.update(block)
        return digest.hexdigest()


# s3://, gs://, hf://, https://: what a user of cloud corpora may pass, and pathlib would fold to `s3:/`.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
NOT_LOCAL = "a URL; omni-caption reads local files and folders, so download or mount it first"


def is_url(name: str) -> bool:
    return bool(_URL.match(name))


def path_list(paths: str | Path | Sequence[str | Path]) -> list[str | Path]:
    """`paths` as a list: one given bare, as `run_corpus("recordings", ...)`, was read a letter at a time
    ("r: no such file or folder")."""
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


def discover(inputs: str | Path | Sequence[str | Path], listed: str | Sequence[str] = (),
             problems: list[str] | None = None, ignored: Counter | None = None) -> list[SourceFile]:
    """Media files under `inputs` (files or folders, recursively) and the files `listed`, sorted, each once.

    Hidden files and folders are skipped; other extensions are ignored. A
    missing input path raises InputPathError. A file's `source_path` is its
    path under the input it was found in; where two inputs hold different
    files at the same relative path (day1/mic.wav, day2/mic.wav), those get
    as much of their input folder's path in front as tells them apart.

    `listed` (`--files-from`): paths as a list names them, relative to the
    working folder; each file is taken whatever its extension and keeps the
    path as listed, and one that is missing is kept for an error row, so one
    stale line does not stop a run over a long list. A listed folder is
    walked like an input.

    Linked folders are followed, each real folder once (an archive often
    links in another disk's folder; a link back up cannot loop). A folder
    that cannot be read adds a line to `problems`; `ignored` counts the
    files of other kinds by extension, so a format left out can be noticed.
    """
    inputs, listed = path_list(inputs), path_list(listed)
    problems = [] if problems is None else problems
    found: dict[Path, tuple[Path, Path, str]] = {}  # file -> (path as found, its input folder, relative)
    roots = [Path(_as_meant(str(raw))).expanduser() for raw in inputs]
    for raw, root in zip(inputs, roots):
        if not root.exists():
            if is_url(str(raw)):
                raise InputPathError(f"{raw}: {NOT_LOCAL}")
            raise InputPathError(f"input path does not exist: {raw}")
    for entry in map(_as_meant, listed):
        path = Path(entry).expanduser()
        if path.is_dir():
            roots.append(path)
        else:
            # A URL keeps its `//` (pathlib folds it to `s3:/`), so its error row names it as listed.
            found.setdefault(_identity(path), (path, Path.cwd(), entry if is_url(entry) else path.as_posix()))
    for root in roots:
        if not root.is_dir():  # a file, or a named pipe given by name: its error row says what it is
            found.setdefault(_identity(root), (root, root.parent, root.name))
            continue
        for path in _walk(root, problems):
            # A broken link or a named pipe named like a recording: kept, for an error row saying what it is.
            if not is_media(path):
                if ignored is not None:
                    ignored[path.suffix.lower() or "(none)"] += 1
            elif not path.is_dir():
                identity = _identity(path)
                known = found.get(identity)
                # A link and the file it names: the file's own name is the one kept.
                if known is None or (os.path.islink(known[0]) and not os.path.islink(path)):
                    found[identity] = (path, root, path.relative_to(root).as_posix())
    names = _distinct_names([(folder, relative) for _, folder, relative in found.values()])
    sources = [SourceFile(path, stored_name(name)) for (path, _, _), name in zip(found.values(), names)]
    return sorted(sources, key=lambda s: (s.source_path, str(s.path)))


def check_found(sources: Sequence[SourceFile], inputs: Sequence[str | Path], problems: Sequence[str],
                ignored: Counter) -> None:
    """Stop a run whose inputs hold no recording at all, saying what they hold instead. An unmounted share
    is an empty folder, and an empty dataset with exit status 0 told a pipeline that all was well."""
    if sources:
        return
    where = ", ".join(map(str, inputs)) or "the --files-from list"
    found = [*problems, ignored_line(ignored) or ("no files at all (hidden ones aside)" if inputs else
                                                  "it names no file")]
    raise NoRecordingsFound(f"no recordings in {where}: {'; '.join(found)}; nothing was written")


def _as_meant(entry: str) -> str:
    """A path given or listed, as it is on disk where only another spelling of it is: without the spaces
    around it (a list pasted from a spreadsheet or an editor often carries them), or in the other Unicode
    form (`café` typed or listed is composed; a file copied from a Mac is named decomposed, so the two were
    different names and the recording 'did not exist'). A name that is on disk as given is kept."""
    if os.path.lexists(Path(entry).expanduser()):
        return entry
    for spelling in (entry.strip(), unicodedata.normalize("NFC", entry), unicodedata.normalize("NFD", entry),
                     unicodedata.normalize("NFC", entry.strip()), unicodedata.normalize("NFD", entry.strip())):
        if spelling != entry and os.path.lexists(Path(spelling).expanduser()):
            return spelling
    return entry


def _distinct_names(entries: list[tuple[Path, str]]) -> list[str]:
    """Each (input folder, relative path) as its relative path, or, where that is shared by files of
    different inputs, behind the fewest trailing parts of the folder's path that make it unique."""
    names = [relative for _, relative in entries]
    shared = {name for name, count in Counter(names).items() if count > 1}
    if not shared:
        return names
    clashing = [i for i, name in enumerate(names) if name in shared]
    folders = {i: entries[i][0].absolute().parts[1:] for i in clashing}  # without the anchor ("/")
    others = {name for j, name in enumerate(names) if name not in shared}
    for depth in range(1, max(len(parts) for parts in folders.values()) + 1):
        candidate = {i: "/".join((*folders[i][-depth:], names[i])) for i in clashing}
        if len(set(candidate.values())) == len(candidate) and not others & set(candidate.values()):
            break
    else:  # the whole folder path did not do (a name clashes with one under the file system's root)
        candidate = {i: (entries[i][0].absolute() / names[i]).as_posix() for i in clashing}
    return [candidate.get(i, name) for i, name in enumerate(names)]


def _walk(root: Path, problems: list[str]) -> Iterator[Path]:
    """Every file and link under `root` but hidden ones, following linked folders once each.

    The real folders come first and the linked ones after, so a folder or file reached both ways is
    named by its real path: a `latest -> 2024-11` link sorted before it would otherwise name the
    recordings, and the names would change when the link is moved on.
    """
    seen: set[tuple[int, int]] = set()
    tops = [root]  # the linked folders are added as they are met; the loop below reaches them too

    def unreadable(error: OSError) -> None:
        where = Path(error.filename or root)
        problems.append(f"{stored_name(where.relative_to(root).as_posix() if where != root else str(root))}/: "
                        f"folder not read ({error.strerror or error}); recordings in it are left out")

    for top in tops:
        for folder, folders, files in os.walk(top, onerror=unreadable):
            try:
                info = os.stat(folder)
            except OSError as error:
                unreadable(error)
                folders.clear()
                continue
            if (info.st_dev, info.st_ino) in seen:  # reached again through a link: walked already
                folders.clear()
                continue
            seen.add((info.st_dev, info.st_ino))
            if VOICE_JOURNAL in files and Path(folder) != root:
                # `speak --out voices/` inside the recordings: the next run would caption the talker's own
                # WAVs as recordings, synthetic speech in a training corpus. Named as an input, it is read.
                problems.append(f"{stored_name(Path(folder).relative_to(root).as_posix())}/: not read, it holds "
                                f"the WAVs `omni-caption speak` wrote ({VOICE_JOURNAL}); give it as an input to "
                                f"caption them")
                folders.clear()
                continue
            shown = sorted(name for name in folders if not name.startswith("."))
            tops.extend(Path(folder, name) for name in shown if os.path.islink(Path(folder, name)))
            folders[:] = [name for name in shown if not os.path.islink(Path(folder, name))]
            for name in sorted(files):
                if not name.startswith("."):
                    yield Path(folder, name)


def _identity(path: Path) -> Path:
    """The file behind `path`, so that two links to one recording count once; a link loop is itself."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return path.absolute()

