"""SRT and WebVTT subtitles from segment rows: one file per recording."""

from __future__ import annotations

import hashlib
import html
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from .parquet_store import NAME_MAX, cut_to_bytes


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str
    speaker: str | None = None


def format_timestamp(seconds: float, decimal_marker: str = ",") -> str:
    """00:01:02,345 (SRT) or 00:01:02.345 (VTT), rounded to the millisecond; hours may exceed 99."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def _clean(text: str) -> str:
    # A blank line ends a cue in both formats, "-->" would read as a timing line, and a control character
    # (a bell, an escape) is no text a player can show.
    lines = [" ".join(_shown_only(line).split()) for line in text.replace("-->", "->").splitlines()]
    return "\n".join(line for line in lines if line)


def _shown_only(line: str) -> str:
    if line.isprintable():
        return line
    return "".join(c for c in line if c.isspace() or unicodedata.category(c) != "Cc")


def cues_from_rows(rows: Iterable[tuple]) -> list[Cue]:
    """Rows of (start_s, end_s, transcript, caption, speaker) in time order; the transcript is preferred."""
    cues = []
    for start_s, end_s, transcript, caption, speaker in rows:
        text = _clean(transcript or "") or _clean(caption or "")
        if text and start_s is not None and end_s is not None:
            cues.append(Cue(start_s, end_s, text, speaker))
    return cues


def to_srt(cues: list[Cue]) -> str:
    """SRT has no voices, so a speaker (with --diarize) leads the text as `[SPEAKER_00]: `, as WhisperX
    writes it."""
    blocks = [f"{i}\n{format_timestamp(c.start_s)} --> {format_timestamp(c.end_s)}\n"
              f"{_srt_speaker(c.speaker)}{_clean(c.text)}\n"
              for i, c in enumerate(cues, start=1)]
    return "\n".join(blocks)


def _srt_speaker(speaker: str | None) -> str:
    name = _clean(speaker or "")
    return f"[{name}]: " if name else ""


def to_vtt(cues: list[Cue]) -> str:
    blocks = ["WEBVTT\n"]
    for c in cues:
        text = _vtt_text(_clean(c.text))
        text = f"<v {_voice(c.speaker)}>{text}" if c.speaker else text
        blocks.append(f"{format_timestamp(c.start_s, '.')} --> {format_timestamp(c.end_s, '.')}\n{text}\n")
    return "\n".join(blocks)


def _vtt_text(text: str) -> str:
    """WebVTT cue text is markup: a bare '<' opens a tag, so '<laughs>' would vanish and 'a < b' cut the cue."""
    return html.escape(text, quote=False)


def _voice(speaker: str) -> str:
    return re.sub(r"[<>&]", "", speaker).strip() or "speaker"


def subtitle_names(source_paths: Iterable[str], suffix: str) -> dict[str, str]:
    """source_path -> file name: 'talks/a.wav' -> 'talks__a.srt', the extension kept only where names clash."""
    paths = sorted(set(source_paths))
    stems = {p: re.sub(r"\.[^./]*$", "", p).replace("/", "__") for p in paths}
    counts = Counter(stems.values())
    clashing = {s for s, n in counts.items() if n > 1}
    names: dict[str, str] = {}
    used: set[str] = set()
    for p in paths:
        base = p.replace("/", "__") if stems[p] in clashing else stems[p]
        name, n = _within_name_max(base, suffix, p), 1
        while name in used:  # 'a/b.wav' and 'a__b.wav' still meet: number them
            n += 1
            name = _within_name_max(f"{base}-{n}", suffix, p)
        used.add(name)
        names[p] = name
    return names


def _within_name_max(base: str, suffix: str, source_path: str) -> str:
    """`base + suffix`, or where that is over NAME_MAX bytes (a deep folder path flattened with '__'), its end
    (the file's own name) after a digest of the source path, so that it can be written and stays apart."""
    name = base + suffix
    if len(os.fsencode(name)) <= NAME_MAX:
        return name
    digest = hashlib.sha256(os.fsencode(source_path)).hexdigest()[:12]
    return f"{digest}-{cut_to_bytes(base, NAME_MAX - len(os.fsencode(suffix)) - 13, keep_end=True)}{suffix}"
