"""Text measures behind the guards: tokens (CJK too), spoken characters, compression ratio, loops."""

import string
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from omni_caption.captioner.text_stats import (compression_ratio, find_loop, has_words, spoken_chars, tokens,
                                               windowed_compression_ratio)

LONG_CAPTION = (Path(__file__).parent / "data" / "long_caption.txt").read_text()
THRESHOLD = 2.4


def test_tokens_split_words_and_cjk_characters():
    assert tokens("Hello, World!") == ["hello", "world"]
    assert tokens("你好，世界") == ["你", "好", "世", "界"]
    assert tokens("こんにちは") == list("こんにちは")
    assert tokens("ok 谢谢 ok") == ["ok", "谢", "谢", "ok"]
    assert tokens("안녕하세요 여러분") == ["안녕하세요", "여러분"]  # Korean spaces its words
    # Vowel signs are marks: `\w` would cut नमस्ते in two, we keep one word.
    assert tokens("नमस्ते दोस्त") == ["नमस्ते", "दोस्त"]


def test_spoken_chars_count_letters_and_digits_only():
    assert spoken_chars("Hi, there! 42") == 9
    assert spoken_chars("你好，世界。") == 4
    assert spoken_chars("Nguye\u0302\u0303n") == spoken_chars("Nguyễn") == 6  # NFC composes the diacritics
    assert spoken_chars("नमस्ते") == 4  # न म स त: vowel signs and virama are marks
    assert not has_words("... — !") and not has_words("") and not has_words(None)
    assert has_words("a")


def test_compression_ratio_is_whispers_formula():
    text = "hello world " * 10
    data = text.encode()
    assert compression_ratio(text) == len(data) / len(zlib.compress(data))
    assert compression_ratio("") == 0.0


def test_windowed_ratio_equals_whisper_up_to_the_window():
    text = "A dog barks twice, then a car passes on wet asphalt."
    assert windowed_compression_ratio(text, 200) == compression_ratio(text)


def test_long_natural_caption_passes_but_a_loop_at_its_end_does_not():
    assert len(LONG_CAPTION) > 1500
    assert windowed_compression_ratio(LONG_CAPTION) < THRESHOLD
    looped = LONG_CAPTION + " " + "and the rain keeps falling, " * 6
    # Over the whole text the loop is diluted below Whisper's threshold; a window sees it.
    assert compression_ratio(looped) < THRESHOLD < windowed_compression_ratio(looped)


def test_find_loop_rule():
    assert find_loop(tokens("no " * 16)).unit == ("no",)
    assert find_loop(tokens("no " * 15)) is None  # fewer than 16 tokens
    assert find_loop(tokens("thank you " * 8)).repeats == 8
    assert find_loop(tokens("thank you " * 7)) is None  # 14 tokens
    loop = find_loop(tokens("intro words here " + "the music continues softly " * 4 + "end"))
    assert loop.unit == ("the", "music", "continues", "softly") and loop.start == 3 and loop.length == 16
    assert find_loop(tokens("one two three four five six seven eight " * 3)) is None  # 3 repeats < 4
    assert find_loop(tokens("哈" * 16)).unit == ("哈",)
    assert find_loop(tokens("谢谢大家" * 4)).unit == tuple("谢谢大家")
    assert find_loop(tokens("我们明天早上八点在火车站见面然后一起去机场接朋友")) is None


def test_find_loop_prefers_the_longest_run():
    text = "la " * 20 + "a b c d e " * 4
    assert find_loop(tokens(text)).unit == ("la",)


words = st.text(alphabet=string.ascii_lowercase, min_size=3, max_size=10)


@settings(max_examples=60, deadline=None)
@given(st.lists(words, min_size=5, max_size=300, unique=True))
def test_text_without_repeated_words_is_never_repetitive(vocab):
    text = " ".join(vocab)
    assert windowed_compression_ratio(text) < THRESHOLD
    assert find_loop(tokens(text)) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=5, max_size=400, unique=True))
def test_cjk_text_without_repeated_characters_is_never_repetitive(chars):
    text = "".join(chars)
    assert windowed_compression_ratio(text) < THRESHOLD
    assert find_loop(tokens(text)) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(words, min_size=1, max_size=12), st.integers(min_value=16, max_value=40))
def test_any_phrase_repeated_enough_is_a_loop(phrase, times):
    text = " ".join(phrase * times)
    loop = find_loop(tokens(text))
    assert loop is not None and loop.length == len(phrase) * times


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=60).filter(lambda s: s.strip()))
def test_any_short_string_repeated_to_fill_a_window_compresses_past_the_threshold(unit):
    text = unit * (400 // len(unit) + 1)  # at least two windows of 200 characters
    assert windowed_compression_ratio(text) > THRESHOLD
