"""The terms search indexes and looks up: words, and character pairs for scripts without spaces.

Chinese and Japanese put no spaces between words, and Korean glues particles
onto its words ("회의를": the meeting + object marker), so splitting on spaces
leaves whole clauses as single terms and a search for one word finds nothing.
As Lucene's CJK analyzer does, a run of these characters is indexed as its
single characters and its overlapping pairs, and looked up as its pairs (or
the one character, when a query's run is a single character): "预算" then
finds "我们讨论了预算和计划".
"""

from __future__ import annotations

import re
import unicodedata

# Hangul is in, unlike the guards' CJK tokens (captioner.text_stats): Korean has
# spaces, but a word is indexed with its particles attached, so it needs pairs too.
_PAIRED_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3134F),  # CJK extensions B-G
)
# Half-width Katakana and full-width Latin are not in the list: NFKC turns them
# into the characters above or ASCII, so text holding them is spelled out too.
_WIDTH_FORMS = (0xFF00, 0xFFEF)
_PAIRED_RUN = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _PAIRED_RANGES) + "]+")
_WORD_SPLIT = re.compile(r"[\W_]+")


def needs_spelling_sql(column: str) -> str:
    """A DuckDB condition, true where `index_text` would change `column` (so other text skips the Python call)."""
    ranges = "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in _PAIRED_RANGES + (_WIDTH_FORMS,))
    return f"regexp_matches({column}, '[{ranges}]')"


def index_text(text: str) -> str:
    """`text` as fts should index it: NFKC, each paired-script run spelled out as characters and pairs."""
    return _PAIRED_RUN.sub(lambda run: f" {' '.join(_grams(run.group(), singles=True))} ",
                           unicodedata.normalize("NFKC", text))


def query_words(text: str) -> list[str]:
    """The terms of a query, folded as the index folds them: a paired-script run gives its pairs."""
    spelled = _PAIRED_RUN.sub(lambda run: f" {' '.join(_grams(run.group(), singles=False))} ",
                              unicodedata.normalize("NFKC", text))
    return _fold_and_split(spelled)


def indexed_words(text: str) -> list[str]:
    """The terms the index holds for `text`, folded: what a query's terms are matched against."""
    return _fold_and_split(index_text(text))


def _grams(run: str, singles: bool) -> list[str]:
    pairs = [run[i:i + 2] for i in range(len(run) - 1)]
    if singles or not pairs:
        return list(run) + pairs
    return pairs


def _fold_and_split(text: str) -> list[str]:
    # fts's strip_accents drops combining marks; NFC afterwards puts Hangul syllables back together.
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return [w for w in _WORD_SPLIT.split(unicodedata.normalize("NFC", stripped).lower()) if w]
