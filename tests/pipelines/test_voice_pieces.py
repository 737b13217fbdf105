"""Sentence pieces for the talker and crossfaded joins, with Hypothesis for the arithmetic."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_caption.pipelines.voice_pieces import CrossfadeJoiner, crossfade_join, split_into_pieces


def test_pieces_cut_at_sentence_ends_and_pack_short_sentences():
    text = "We met at nine. The budget passed!  Then   lunch? " + "A long sentence about many things " * 3 + "ends."
    pieces = split_into_pieces(text, max_chars=60)
    assert pieces[0] == "We met at nine. The budget passed! Then lunch?"
    assert all(len(p) <= 60 for p in pieces)
    assert " ".join(pieces) == " ".join(text.split())


def test_overlong_sentences_cut_at_clauses_then_spaces():
    text = "First clause here, second clause there; " + "word " * 30
    pieces = split_into_pieces(text, max_chars=40)
    assert pieces[0] == "First clause here, second clause there;"
    assert all(len(p) <= 40 for p in pieces)


def test_cjk_sentences_split_without_spaces():
    pieces = split_into_pieces("今天开会了。预算通过了！" * 3, max_chars=20)
    assert pieces[0].startswith("今天开会了。预算通过了！")
    assert all(len(p) <= 20 and p[-1] in "。！" for p in pieces)
    assert "".join(pieces).replace(" ", "") == "今天开会了。预算通过了！" * 3


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab cd.,!?;。x ")), max_size=400), st.integers(20, 120))
def test_pieces_fit_and_lose_no_character(text, max_chars):
    pieces = split_into_pieces(text, max_chars)
    assert all(0 < len(p) <= max_chars for p in pieces)
    assert all(p == p.strip() for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "").replace("\n", "")


def test_constant_signal_stays_constant_across_crossfades():
    joined = crossfade_join([np.ones(100, np.float32)] * 3, fade_samples=20)
    assert len(joined) == 300 - 2 * 20
    np.testing.assert_allclose(joined, 1.0, rtol=1e-6)


def test_crossfade_mixes_the_tail_into_the_head():
    joined = crossfade_join([np.zeros(50, np.float32), np.ones(50, np.float32)], fade_samples=10)
    fade = joined[40:50]
    assert np.all(np.diff(fade) > 0) and 0 < fade[0] < 0.1 and 0.9 < fade[-1] < 1
    np.testing.assert_array_equal(joined[:40], 0)
    np.testing.assert_array_equal(joined[50:], 1)


def test_zero_fade_is_plain_concatenation():
    pieces = [np.arange(5, dtype=np.float32), np.arange(3, dtype=np.float32)]
    np.testing.assert_array_equal(crossfade_join(pieces, 0), np.concatenate(pieces))


pieces_strategy = st.lists(st.integers(0, 300), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(pieces_strategy, st.integers(0, 64), st.data())
def test_streamed_chunks_join_exactly_like_whole_pieces(lengths, fade, data):
    rng = np.random.default_rng(len(lengths) * 1000 + fade)
    pieces = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    whole = crossfade_join(pieces, fade)
    out: list[np.ndarray] = []
    joiner = CrossfadeJoiner(out.append, fade)
    for piece in pieces:
        cuts = sorted(data.draw(st.lists(st.integers(0, len(piece)), max_size=4)))
        for a, b in zip([0] + cuts, cuts + [len(piece)]):
            joiner.push(piece[a:b])
        joiner.end_piece()
    joiner.close()
    streamed = np.concatenate(out) if out else np.zeros(0, np.float32)
    np.testing.assert_array_equal(streamed, whole)
    assert joiner.total == len(whole)
    # Each join overlaps by the fade, or less where a piece is shorter than it.
    overlap, held = 0, 0
    for i, n in enumerate(lengths):
        if i and held and n:
            overlap += min(fade, held, n)
        if n:
            held = min(fade, n)
    assert len(whole) == sum(lengths) - overlap
