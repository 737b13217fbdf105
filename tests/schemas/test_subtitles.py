import os
import re

from hypothesis import given
from hypothesis import strategies as st

from omni_caption.schemas.subtitles import Cue, cues_from_rows, format_timestamp, subtitle_names, to_srt, to_vtt


def test_timestamp_formats():
    assert format_timestamp(1.5) == "00:00:01,500"
    assert format_timestamp(1.5, ".") == "00:00:01.500"
    assert format_timestamp(3661.0004) == "01:01:01,000"
    assert format_timestamp(59.9996) == "00:01:00,000"  # rounds up across the minute
    assert format_timestamp(360_000.0) == "100:00:00,000"


@given(st.integers(min_value=0, max_value=10**9))
def test_timestamp_round_trips_milliseconds(ms):
    text = format_timestamp(ms / 1000)
    h, m, s, frac = re.fullmatch(r"(\d{2,}):(\d{2}):(\d{2}),(\d{3})", text).groups()
    assert int(m) < 60 and int(s) < 60
    assert ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(frac) == ms


def test_transcript_preferred_caption_as_fallback_empty_skipped():
    cues = cues_from_rows([(0.0, 1.0, "hello", "a voice", None), (1.0, 2.0, None, "a dog barks", "S1"),
                           (2.0, 3.0, "  ", None, None), (3.0, 4.0, None, None, None)])
    assert [c.text for c in cues] == ["hello", "a dog barks"]


def test_srt_blocks():
    srt = to_srt([Cue(0.0, 1.5, "one"), Cue(1.5, 62.25, "two\n\nlines --> here")])
    assert srt == ("1\n00:00:00,000 --> 00:00:01,500\none\n\n"
                   "2\n00:00:01,500 --> 00:01:02,250\ntwo\nlines -> here\n")


def test_control_characters_a_player_cannot_show_are_left_out():
    srt = to_srt([Cue(0.0, 1.0, "ring\a the \x1b[31mbell\x7f\tnow")])
    assert srt.splitlines()[2] == "ring the [31mbell now"
    assert cues_from_rows([(0.0, 1.0, "\a\x1b", "a caption", None)]) == [Cue(0.0, 1.0, "a caption")]


def test_srt_puts_the_speaker_before_the_text_as_whisperx_does():
    srt = to_srt([Cue(0.0, 1.5, "Hello there.", speaker="SPEAKER_00"), Cue(1.5, 2.0, "Hi.", speaker=None)])
    assert srt.splitlines()[2] == "[SPEAKER_00]: Hello there." and srt.splitlines()[6] == "Hi."


def test_vtt_header_dots_and_voices():
    vtt = to_vtt([Cue(0.0, 1.5, "one", speaker="SPEAKER_<1>")])
    assert vtt == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n<v SPEAKER_1>one\n"


def test_vtt_escapes_what_would_read_as_markup():
    vtt = to_vtt([Cue(0.0, 1.0, "<laughs> Tom & Jerry: a < b --> c", speaker="S1")])
    assert vtt.splitlines()[-1] == "<v S1>&lt;laughs&gt; Tom &amp; Jerry: a &lt; b -&gt; c"


def test_names_replace_slashes_and_stay_unique():
    names = subtitle_names(["talks/a.wav", "b.wav", "b.mp3", "x/y.wav", "x__y.flac"], ".srt")
    assert names["talks/a.wav"] == "talks__a.srt"
    assert {names["b.wav"], names["b.mp3"]} == {"b.wav.srt", "b.mp3.srt"}
    assert len(set(names.values())) == 5 and all("/" not in n for n in names.values())


def test_a_deep_path_flattened_past_name_max_keeps_its_file_name_and_stays_apart():
    folders = "/".join(f"folder_with_a_fairly_long_name_{i}_{'é' * 10}" for i in range(8))
    names = subtitle_names([f"{folders}/talk.wav", f"{folders}/talk2.wav", "a.wav"], ".srt")
    assert names["a.wav"] == "a.srt"
    for leaf in ("talk", "talk2"):
        name = names[f"{folders}/{leaf}.wav"]
        assert len(os.fsencode(name)) <= 255 and name.endswith(f"é__{leaf}.srt")
    assert names[f"{folders}/talk.wav"] != names[f"{folders}/talk2.wav"]


FOLDER_NAMES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1,
                       max_size=60)


@given(st.lists(st.lists(FOLDER_NAMES, min_size=1, max_size=12).map("/".join), min_size=1, max_size=6))
def test_every_name_fits_a_file_system_and_names_one_recording(paths):
    names = subtitle_names(paths, ".vtt")
    assert set(names) == set(paths)
    assert len(set(names.values())) == len(names)
    assert all(len(os.fsencode(n)) <= 255 and n.endswith(".vtt") and "/" not in n for n in names.values())
