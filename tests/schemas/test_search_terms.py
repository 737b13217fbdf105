from hypothesis import given
from hypothesis import strategies as st

from omni_caption.schemas.search_terms import index_text, indexed_words, query_words

# Han, Hiragana and Hangul syllables: characters NFKC leaves alone, so a slice of the text is a query for it.
PAIRED = st.text(st.one_of(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
                           st.characters(min_codepoint=0x3041, max_codepoint=0x3096),
                           st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)), min_size=1, max_size=30)


@given(PAIRED, st.data())
def test_every_slice_of_a_run_is_found_in_its_run(text, data):
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    assert set(query_words(text[start:end])) <= set(indexed_words(text))


def test_a_run_is_spelled_as_characters_and_pairs_and_a_query_as_pairs():
    assert index_text("会议开始") == " 会 议 开 始 会议 议开 开始 "
    assert query_words("会议开始") == ["会议", "议开", "开始"]
    assert query_words("会") == ["会"]


def test_spaced_scripts_keep_their_words_and_widths_are_folded():
    assert query_words("Déjà vu, café!") == ["deja", "vu", "cafe"]
    assert index_text("ＡＢＣ") == "ABC"
    assert query_words("ｶﾞｽ") == query_words("ガス") == ["カス"]
    assert indexed_words("AI预算") == ["ai", "预", "算", "预算"]
