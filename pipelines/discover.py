"""Find the recordings under the input paths."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from omni_caption.schemas.source_names import stored_name

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".webm", ".mov"})
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS


class InputPathError(FileNotFoundError):
    pass


@dataclass(frozen=True)
class SourceFile:
    path: Path  # on disk
    source_path: str  # as stored: relative to the input root it was found under, always valid UTF-8

    def sha256(self, block_size: int = 1 << 20) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            while block := handle.read(block_size):
                digest.update(block)
        return digest.hexdigest()


def is_media(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_EXTENSIONS


def discover(inputs: list[str | Path]) -> list[SourceFile]:
    """Media files under `inputs` (files or folders, recursively), sorted, each once.

    Hidden files and folders are skipped; other extensions are ignored. A
    missing input path raises InputPathError.
    """
    found: dict[Path, SourceFile] = {}
    for raw in inputs:
        root = Path(raw).expanduser()
        if not root.exists():
            raise InputPathError(f"input path does not exist: {raw}")
        if root.is_file():
            found.setdefault(_identity(root), SourceFile(root, stored_name(root.name)))
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts):
                continue
            # A broken link named like a recording is a missing recording: kept, for an error row saying so.
            if is_media(path) and (path.is_file() or (path.is_symlink() and not path.is_dir())):
                found.setdefault(_identity(path), SourceFile(path, stored_name(relative.as_posix())))
    return sorted(found.values(), key=lambda s: (s.source_path, str(s.path)))


def _identity(path: Path) -> Path:
    """The file behind `path`, so that two links to one recording count once; a link loop is itself."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return path.absolute()

