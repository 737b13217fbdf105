"""Plausible speaking rates, in characters per second of speech, for the 19 languages Qwen3-Omni hears.

Characters are letters and digits after NFC (`text_stats.spoken_chars`):
spaces, punctuation and combining marks do not count. What one character is
worth differs by script, so the bounds do too:

- Chinese and Cantonese: one character is one syllable.
- Japanese: a kana is one mora, a kanji about two.
- Korean: one Hangul block is one syllable (spaces between words do not count).
- Latin and Cyrillic alphabets: about 2.2 (Spanish, Italian) to 3 (English,
  German) letters per syllable.
- Vietnamese: one syllable per written word, about 3.5 letters each.
- Arabic and Urdu: abjads; short vowels are usually unwritten, so about 1.8
  letters per syllable.
- Hindi: vowel signs are marks and do not count, so about 1.6 letters per
  syllable.

Typical rates (read speech, Pellegrino et al. 2011 and Coupé et al. 2019) are
5-8 syllables per second. The upper bound is about twice a typical fast rate,
because VAD can miss quiet speech and so shrink the time measured. A
hallucinated sentence written over three seconds of speech lands far above it.
The lower bound is about a quarter of a typical rate, and it applies only when
the VAD heard enough speech to measure (see guards).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .prompts import SPEECH_LANGUAGES, normalise_language
from .text_stats import is_cjk


@dataclass(frozen=True)
class RateBounds:
    min_chars_per_s: float
    max_chars_per_s: float

    def contains(self, chars_per_s: float, check_min: bool = True) -> bool:
        if chars_per_s > self.max_chars_per_s:
            return False
        return not check_min or chars_per_s >= self.min_chars_per_s


# Syllables/s x characters/syllable, as above; typical rate in the comment.
RATE_BOUNDS: MappingProxyType[str, RateBounds] = MappingProxyType({
    "English": RateBounds(3.0, 30.0),  # ~6.2 syl/s x ~2.9 letters; 150-180 wpm ~ 12-15/s
    "German": RateBounds(3.0, 30.0),  # ~6.0 syl/s, long spellings (~3 letters/syl)
    "Dutch": RateBounds(3.0, 30.0),  # like German
    "French": RateBounds(3.0, 32.0),  # ~7.2 syl/s, silent letters (~2.7 letters/syl)
    "Spanish": RateBounds(3.0, 32.0),  # ~7.8 syl/s x ~2.2 letters
    "Italian": RateBounds(3.0, 30.0),  # ~7.0 syl/s x ~2.2 letters
    "Portuguese": RateBounds(3.0, 30.0),  # ~7 syl/s x ~2.3 letters
    "Russian": RateBounds(3.0, 30.0),  # ~6 syl/s x ~2.4 Cyrillic letters
    "Turkish": RateBounds(3.0, 30.0),  # ~6.5 syl/s x ~2.5 letters, agglutinative
    "Malay": RateBounds(3.0, 30.0),  # CV syllables, ~6.5 syl/s x ~2.3 letters
    "Indonesian": RateBounds(3.0, 30.0),  # as Malay
    "Vietnamese": RateBounds(2.5, 32.0),  # ~5.2 syl/s x ~3.5 letters (NFC: 'ễ' is one)
    "Arabic": RateBounds(2.0, 22.0),  # abjad: ~5.5 syl/s x ~1.8 letters
    "Urdu": RateBounds(2.0, 22.0),  # Perso-Arabic abjad, as Arabic
    "Hindi": RateBounds(2.0, 22.0),  # Devanagari without vowel signs: ~6 syl/s x ~1.6
    "Chinese": RateBounds(1.0, 12.0),  # 1 char = 1 syl; 4-5/s conversational, ~8 very fast
    "Cantonese": RateBounds(1.0, 13.0),  # 1 char = 1 syl, ~5.6 syl/s
    "Japanese": RateBounds(1.5, 15.0),  # ~7.8 morae/s; kana 1 mora, kanji ~2: ~5-6 chars/s
    "Korean": RateBounds(1.5, 15.0),  # 1 Hangul block = 1 syl, ~6.5 syl/s
})
assert set(RATE_BOUNDS) == set(SPEECH_LANGUAGES), "one rate bound per speech language"

# Unknown language: pick by script. Syllabic scripts count one character per syllable.
SYLLABIC_DEFAULT = RateBounds(1.0, 15.0)
ALPHABETIC_DEFAULT = RateBounds(2.0, 32.0)


def _is_hangul(char: str) -> bool:
    code = ord(char)
    return 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F


def is_syllabic(char: str) -> bool:
    """Written one character per syllable (CJK, Hangul)."""
    return is_cjk(char) or _is_hangul(char)


def syllabic_count(text: str) -> int:
    return sum(1 for c in text if is_syllabic(c))


def syllabic_share(text: str) -> float:
    """Share of letters and digits written in a one-character-per-syllable script (CJK, Hangul)."""
    chars = [c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c)[0] in "LN"]
    if not chars:
        return 0.0
    return sum(1 for c in chars if is_syllabic(c)) / len(chars)


def bounds_for(language: str | None, text: str = "", table: Mapping[str, RateBounds] = RATE_BOUNDS) -> RateBounds:
    """The language's bounds; for an unknown language, the default of the script most of `text` is in."""
    try:
        name = normalise_language(language)
    except ValueError:
        name = None
    if name in table:
        return table[name]
    return SYLLABIC_DEFAULT if syllabic_share(text) > 0.5 else ALPHABETIC_DEFAULT
