"""Long texts in, talker-sized pieces out; voiced pieces in, one continuous waveform out.

The talker reads one text token per codec frame and drifts on very long
inputs, so a summary is voiced sentence by sentence (short sentences packed
together up to a limit) and the pieces are joined with short crossfades.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

# Sentence ends: Latin punctuation followed by space, or CJK full-width punctuation (no space follows).
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])")
_CLAUSE_END = re.compile(r"(?<=[,;:，；：、])\s*")


def _glue(left: str, right: str) -> str:
    # CJK text has no spaces between sentences or clauses.
    return "" if ord(left[-1]) >= 0x2E80 or ord(right[0]) >= 0x2E80 else " "


def _pack(pieces: list[str], part: str, max_chars: int) -> None:
    if pieces and len(pieces[-1]) + len(_glue(pieces[-1], part)) + len(part) <= max_chars:
        pieces[-1] = pieces[-1] + _glue(pieces[-1], part) + part
    else:
        pieces.append(part)


def split_into_pieces(text: str, max_chars: int = 250) -> list[str]:
    """Pieces of at most `max_chars`, cut at sentence ends where possible, then clauses, then spaces.

    Whitespace runs become single spaces; joining the pieces with spaces (none
    between CJK pieces) gives the text back.
    """
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    text = " ".join(text.split())
    pieces: list[str] = []
    for sentence in (s for s in _SENTENCE_END.split(text) if s.strip()):
        for part in _fit(sentence.strip(), max_chars):
            _pack(pieces, part, max_chars)
    return pieces


def _fit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    out: list[str] = []
    for clause in (c for c in _CLAUSE_END.split(sentence) if c.strip()):
        while len(clause) > max_chars:
            cut = clause.rfind(" ", 0, max_chars + 1)
            cut = cut if cut > 0 else max_chars  # no space (e.g. CJK): cut at the limit
            out.append(clause[:cut].strip())
            clause = clause[cut:].strip()
        if clause:
            _pack(out, clause, max_chars)
    return out


class CrossfadeJoiner:
    """Joins pieces of audio with linear crossfades, passing samples on as soon as they are final.

    The last `fade` samples of each piece are held back until the next piece
    starts (or the end), so this serves streaming and whole-piece use alike.
    """

    def __init__(self, sink: Callable[[np.ndarray], None], fade_samples: int):
        self.sink, self.fade = sink, max(0, fade_samples)
        self._held = np.zeros(0, dtype=np.float32)  # tail of the previous piece, awaiting a fade
        self._piece_started = False
        self._head = np.zeros(0, dtype=np.float32)  # start of the current piece, until it can fade in
        self.total = 0

    def push(self, samples: np.ndarray) -> None:
        """More samples of the current piece."""
        samples = np.asarray(samples, dtype=np.float32)
        if not self._piece_started and len(self._held):
            self._head = np.concatenate([self._head, samples])
            if len(self._head) < min(self.fade, len(self._held)):
                return
            samples, self._head = self._fade_in(self._head), np.zeros(0, dtype=np.float32)
        self._piece_started = True
        self._hold_tail(samples)

    def end_piece(self) -> None:
        if not self._piece_started and len(self._head):
            head, self._head = self._head, np.zeros(0, dtype=np.float32)
            self._piece_started = True
            self._hold_tail(self._fade_in(head))
        self._piece_started = False

    def close(self) -> None:
        self.end_piece()
        self._emit(self._held)
        self._held = np.zeros(0, dtype=np.float32)

    def _fade_in(self, head: np.ndarray) -> np.ndarray:
        n = min(self.fade, len(self._held), len(head))
        tail, self._held = self._held[len(self._held) - n:], self._held[: len(self._held) - n]
        self._emit(self._held)
        self._held = np.zeros(0, dtype=np.float32)
        ramp = (np.arange(n, dtype=np.float32) + 0.5) / n if n else np.zeros(0, dtype=np.float32)
        mixed = tail * (1 - ramp) + head[:n] * ramp
        return np.concatenate([mixed, head[n:]])

    def _hold_tail(self, samples: np.ndarray) -> None:
        joined = np.concatenate([self._held, samples])
        keep = min(self.fade, len(joined))
        self._emit(joined[: len(joined) - keep])
        self._held = joined[len(joined) - keep:]

    def _emit(self, samples: np.ndarray) -> None:
        if len(samples):
            self.total += len(samples)
            self.sink(samples)


def crossfade_join(pieces: list[np.ndarray], fade_samples: int) -> np.ndarray:
    out: list[np.ndarray] = []
    joiner = CrossfadeJoiner(out.append, fade_samples)
    for piece in pieces:
        joiner.push(piece)
        joiner.end_piece()
    joiner.close()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
