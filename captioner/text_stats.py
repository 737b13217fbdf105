"""Text measures the guards share: tokens that work for CJK, spoken characters, compression, loops.

Everything here is a pure function of a string, so it is cheap to run over a
whole batch and easy to test with Hypothesis.
"""

from __future__ import annotations

import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np

# Scripts written without spaces between words: each character is one token
# (one syllable in Chinese and Cantonese, one mora or a short word in Japanese).
# Hangul is absent on purpose: Korean puts spaces between words.
_CJK_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x3134F),  # CJK extensions B-G
)


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def _is_word_char(char: str) -> bool:
    # Letters, marks and numbers: unlike `\w`, marks keep Devanagari vowel signs inside their word.
    return unicodedata.category(char)[0] in "LMN"


def normalise(text: str) -> str:
    """NFC + casefold: one spelling per word, so comparisons and counts do not depend on encoding."""
    return unicodedata.normalize("NFC", text).casefold()


def tokens(text: str) -> list[str]:
    """Words for spaced scripts, single characters for CJK; punctuation and spaces dropped."""
    out: list[str] = []
    word: list[str] = []
    for char in normalise(text):
        if is_cjk(char):
            if word:
                out.append("".join(word))
                word = []
            out.append(char)
        elif _is_word_char(char):
            word.append(char)
        elif word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return out


def spoken_chars(text: str) -> int:
    """Letters and digits after NFC: what a speech rate is measured in.

    Marks are left out, so Devanagari vowel signs and Arabic harakat (written or
    not, depending on the writer) do not change the count; NFC first makes a
    Vietnamese 'ễ' one character however it was typed.
    """
    return sum(1 for char in unicodedata.normalize("NFC", text) if unicodedata.category(char)[0] in "LN")


def has_words(text: str | None) -> bool:
    return bool(text) and spoken_chars(text) > 0


def compression_ratio(text: str) -> float:
    """Whisper's figure: UTF-8 bytes over zlib-compressed bytes (0.0 for empty text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def windowed_compression_ratio(text: str, window_chars: int = 200) -> float:
    """The highest compression ratio of any window of `window_chars` characters (half-overlapping).

    Whisper's 2.4 threshold was tuned on 30 s segments. Natural text compresses
    better the longer it is (English prose passes 2.4 near 2,000 characters, and
    Japanese near 250), so a multi-paragraph caption would trip it without any
    loop. Windows of 200 characters (about 30 s of Chinese or Japanese speech,
    15 s of English) keep the scale Whisper tuned; a loop anywhere, even at the
    end of a long caption, still fills a window. Texts up to the window length
    get exactly Whisper's figure.
    """
    if len(text) <= window_chars:
        return compression_ratio(text)
    step = max(1, window_chars // 2)
    starts = list(range(0, len(text) - window_chars + 1, step))
    if starts[-1] != len(text) - window_chars:
        starts.append(len(text) - window_chars)  # the tail is where loops usually sit
    return max(compression_ratio(text[s:s + window_chars]) for s in starts)


@dataclass(frozen=True)
class Loop:
    """A run of tokens made of one unit repeated back to back."""

    unit: tuple[str, ...]
    repeats: float  # copies of the unit in the run (a partial last copy counts as a fraction)
    start: int  # token index where the run starts
    length: int  # tokens in the run

    @property
    def text(self) -> str:
        return " ".join(self.unit)


def find_loop(toks: list[str], max_unit: int = 50, min_repeats: float = 4, min_tokens: int = 16) -> Loop | None:
    """The longest back-to-back repetition of a unit of 1..`max_unit` tokens that is a loop, or None.

    A loop repeats its unit at least `min_repeats` times over at least
    `min_tokens` tokens: "no no no no" is speech, sixteen of them is a decoder
    stuck. A run with period p is a stretch where every token equals the one p
    places before it; comparing the token ids with themselves shifted by p finds
    every such run at once (vectorised per p). Ties go to the shortest unit.
    """
    if len(toks) < max(2, min_tokens):
        return None
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in toks), dtype=np.int64, count=len(toks))
    best: Loop | None = None
    for period in range(1, min(max_unit, len(ids) // 2) + 1):
        same = ids[period:] == ids[:-period]
        if not same.any():
            continue
        # Longest stretch of consecutive True values in `same`.
        edges = np.flatnonzero(np.diff(np.concatenate(([0], same.astype(np.int8), [0]))))
        starts, ends = edges[::2], edges[1::2]
        k = int(np.argmax(ends - starts))
        length = int(ends[k] - starts[k]) + period  # the run includes the first copy of the unit
        if length / period < min_repeats or length < min_tokens:
            continue
        if best is None or length > best.length:
            start = int(starts[k])
            best = Loop(unit=tuple(toks[start:start + period]), repeats=length / period, start=start, length=length)
    return best
