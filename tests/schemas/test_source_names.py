import os

from hypothesis import given
from hypothesis import strategies as st

from omni_caption.schemas.source_names import name_on_disk, stored_name

# Any file-name bytes but "/" and NUL; no backslash, the one character whose meaning the escape changes.
NAME_BYTES = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"/", b"").replace(b"\0", b"")
                                                    .replace(b"\\", b"")).filter(bool)


@given(NAME_BYTES)
def test_a_stored_name_is_utf8_and_leads_back_to_the_file(raw):
    name = os.fsdecode(raw)
    stored = stored_name(name)
    stored.encode("utf-8")  # a lone surrogate would raise: Parquet strings must be UTF-8
    assert name_on_disk(stored) == name
    assert os.fsencode(name_on_disk(stored)) == raw


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_a_utf8_name_is_stored_as_it_is(name):
    assert stored_name(name) == name


def test_latin1_bytes_are_shown_as_ls_shows_them():
    assert stored_name(os.fsdecode(b"caf\xe9 \xe0 midi.wav")) == "caf\\xe9 \\xe0 midi.wav"
