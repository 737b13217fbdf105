"""Each guard firing and not firing on crafted text, CJK included; rate bounds per language."""

import pytest

from omni_caption.captioner import prompts
from omni_caption.captioner.guards import (AGREEMENT_FLAG, GuardInput, GuardOptions, SegmentContext, agreement_guard,
                                           check, check_batch, empty_guard, is_repetitive, quoted_spans,
                                           rate_guard, repetition_guard, silence_guard, truncation_guard,
                                           unheard_quotes, with_agreement_flag)
from omni_caption.captioner.speech_rate import (ALPHABETIC_DEFAULT, RATE_BOUNDS, SYLLABIC_DEFAULT, bounds_for,
                                                syllabic_share)


def transcript(text, duration_s=10.0, speech_ratio=0.8, language="English"):
    return GuardInput("transcript", text, SegmentContext(duration_s, speech_ratio, language))


# ---------------------------------------------------------------- repetition

def test_repetition_fires_on_loops_and_scores_the_ratio():
    found = repetition_guard(transcript("Thank you. " * 20))
    assert found.flags == ("repetition:transcript",)
    assert found.scores["compression_ratio"] > 2.4


def test_repetition_fires_on_an_ngram_loop_the_ratio_misses():
    # A short loop at the end of a varied text: the compression ratio stays low, the 4-gram run does not.
    text = ("First the kettle whistles, then a door creaks open and somebody walks across a wooden floor. "
            "oh no oh no oh no oh no oh no oh no oh no oh no")
    found = repetition_guard(GuardInput("caption", text))
    assert found.scores["caption_compression_ratio"] < 2.4
    assert found.flags == ("repetition:caption",)


@pytest.mark.parametrize("text", [
    "We will leave at dawn tomorrow, so please bring the maps.",
    "No, no, no, I said the blue one.",  # a few repeats are speech, not a loop
    "我们明天一早出发，请把地图带上。",
    "明日の夜明けに出発するので、地図を持ってきてください。",
])
def test_repetition_quiet_on_natural_text(text):
    found = repetition_guard(transcript(text))
    assert found.flags == () and 0 < found.scores["compression_ratio"] < 2.4


@pytest.mark.parametrize("text", ["谢谢大家。" * 10, "哈" * 20, "ありがとうございます。" * 6])
def test_repetition_fires_on_cjk_loops(text):
    assert repetition_guard(transcript(text, language=None)).flags == ("repetition:transcript",)


def test_repetition_scores_by_task_and_skips_empty_text():
    assert "caption_compression_ratio" in repetition_guard(GuardInput("caption", "Birds sing.")).scores
    assert "reasoning_compression_ratio" in repetition_guard(GuardInput("reasoning", "Birds sing.")).scores
    assert repetition_guard(transcript("")) == repetition_guard(transcript(None)) == repetition_guard(transcript("..."))
    assert repetition_guard(transcript("")).scores == {}


def test_repetition_thresholds_are_options():
    text = "la " * 16
    assert is_repetitive(text)
    assert not is_repetitive(text, GuardOptions(loop_min_tokens=17, compression_ratio_threshold=100))


# ---------------------------------------------------------------- speech in silence

def test_speech_in_silence_empties_the_transcript_and_keeps_the_raw_text():
    report = check(transcript("Thank you for watching.", speech_ratio=0.0))
    assert report.flags == ("speech_in_silence:transcript",)
    assert report.text == "" and report.raw_text == "Thank you for watching."
    assert "chars_per_s" not in report.scores  # nothing left to measure a rate on


@pytest.mark.parametrize("item", [
    transcript("Thank you for watching.", speech_ratio=0.03),  # 0.3 s of VAD speech: speech was heard
    transcript("Thank you for watching.", speech_ratio=None),  # no VAD: nothing to compare against
    transcript("...", speech_ratio=0.0),  # no words (the empty guard's business)
    GuardInput("caption", "Rain falls on a tin roof.", SegmentContext(10.0, 0.0)),  # captions may describe sounds
])
def test_speech_in_silence_quiet(item):
    assert silence_guard(item).flags == ()
    assert check(item).raw_text is None


def test_speech_in_silence_boundary_is_in_seconds_of_speech():
    assert silence_guard(transcript("Hello.", duration_s=10.0, speech_ratio=0.019)).flags  # 0.19 s
    assert not silence_guard(transcript("Hello.", duration_s=10.0, speech_ratio=0.021)).flags  # 0.21 s


# ---------------------------------------------------------------- rate

# A real sentence per language and its syllable count (morae for Japanese).
SENTENCES = {
    "English": ("We will leave at dawn tomorrow, so please bring the maps.", 13),
    "German": ("Wir fahren morgen früh los, bitte bring die Karten mit.", 14),
    "Dutch": ("We vertrekken morgen vroeg, neem alsjeblieft de kaarten mee.", 15),
    "French": ("Nous partirons demain à l'aube, apporte les cartes s'il te plaît.", 15),
    "Spanish": ("Saldremos mañana al amanecer, por favor trae los mapas.", 18),
    "Italian": ("Partiremo domani all'alba, per favore porta le mappe.", 19),
    "Portuguese": ("Vamos partir amanhã de madrugada, por favor traga os mapas.", 20),
    "Russian": ("Мы уезжаем завтра на рассвете, пожалуйста, возьми карты.", 19),
    "Turkish": ("Yarın şafakta yola çıkıyoruz, lütfen haritaları getir.", 20),
    "Malay": ("Kami akan bertolak esok pagi, tolong bawa peta itu.", 19),
    "Indonesian": ("Kami akan berangkat besok pagi, tolong bawa petanya.", 18),
    "Vietnamese": ("Chúng tôi sẽ khởi hành lúc bình minh, hãy mang theo bản đồ.", 13),
    "Arabic": ("سنغادر غدا عند الفجر، من فضلك أحضر الخرائط.", 19),
    "Urdu": ("ہم کل صبح سویرے روانہ ہوں گے، براہ کرم نقشے ساتھ لائیں۔", 21),
    "Hindi": ("हम कल सुबह जल्दी निकलेंगे, कृपया नक्शे साथ लाना।", 18),
    "Chinese": ("我们明天一早出发，请把地图带上。", 14),
    "Cantonese": ("我哋聽日一早出發，記得帶埋地圖。", 14),
    "Japanese": ("明日の夜明けに出発するので、地図を持ってきてください。", 28),
    "Korean": ("내일 새벽에 출발하니까 지도를 가져와 주세요.", 19),
}


def test_every_speech_language_has_bounds_and_a_test_sentence():
    assert set(RATE_BOUNDS) == set(prompts.SPEECH_LANGUAGES) == set(SENTENCES)
    for bounds in RATE_BOUNDS.values():
        assert 0 < bounds.min_chars_per_s < bounds.max_chars_per_s


def test_one_char_per_syllable_scripts_have_lower_bounds_than_alphabets():
    syllabic = ("Chinese", "Cantonese", "Japanese", "Korean")
    assert max(RATE_BOUNDS[x].max_chars_per_s for x in syllabic) < \
        min(b.max_chars_per_s for lang, b in RATE_BOUNDS.items() if lang not in syllabic)


def said(language, syllables_per_s, copies=3):
    """The language's sentence `copies` times over, at `syllables_per_s`, all of it VAD speech."""
    text, syllables = SENTENCES[language]
    return transcript(" ".join([text] * copies), duration_s=copies * syllables / syllables_per_s,
                      speech_ratio=1.0, language=language)


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_rate_bounds_per_language(language):
    assert rate_guard(said(language, 5.5)).flags == ()  # typical
    assert rate_guard(said(language, 8.0)).flags == ()  # fast, still human
    assert rate_guard(said(language, 25.0)).flags == ("rate:transcript",)  # no one speaks this fast
    assert rate_guard(said(language, 0.5)).flags == ("rate:transcript",)  # far too little text for the speech


def test_rate_score_is_chars_per_second_of_vad_speech():
    found = rate_guard(transcript("abcde fghij", duration_s=10.0, speech_ratio=0.5))
    assert found.scores == {"chars_per_s": 2.0}


def test_rate_denominator_is_floored_at_one_second():
    # "Yes." over 0.3 s of speech is 3 letters per (floored) second, not 10.
    assert rate_guard(transcript("Yes.", duration_s=0.3, speech_ratio=1.0)).scores == {"chars_per_s": 3.0}


def test_rate_lower_bound_needs_vad_and_enough_speech():
    slow = "Okay."  # 4 letters
    assert rate_guard(transcript(slow, duration_s=10.0, speech_ratio=0.8)).flags == ("rate:transcript",)
    assert rate_guard(transcript(slow, duration_s=10.0, speech_ratio=None)).flags == ()  # may be mostly silence
    assert rate_guard(transcript(slow, duration_s=10.0, speech_ratio=0.25)).flags == ()  # 2.5 s: too short to judge


def test_rate_upper_bound_applies_without_vad():
    text = "word " * 100  # 400 letters in 5 s of segment
    assert rate_guard(transcript(text, duration_s=5.0, speech_ratio=None)).flags == ("rate:transcript",)


def test_rate_unknown_language_picks_bounds_by_script():
    assert bounds_for(None, "我们明天一早出发") == SYLLABIC_DEFAULT
    assert bounds_for("Klingon", "nuqneH") == ALPHABETIC_DEFAULT
    assert bounds_for("zh", "") == RATE_BOUNDS["Chinese"]
    assert syllabic_share("안녕 hi") == 0.5
    fourteen = "我们明天一早出发请把地图带上"
    assert rate_guard(transcript(fourteen, duration_s=1.0, speech_ratio=1.0, language=None)).flags == ()
    assert rate_guard(transcript(fourteen * 2, duration_s=1.0, speech_ratio=1.0, language=None)).flags


def test_rate_only_for_transcripts_with_words_and_a_duration():
    assert rate_guard(GuardInput("caption", "word " * 500, SegmentContext(1.0, 1.0))).flags == ()
    assert rate_guard(transcript("", duration_s=1.0)).scores == {}
    assert rate_guard(GuardInput("transcript", "word " * 500)).scores == {}


# ---------------------------------------------------------------- truncation, empty

def test_truncation_flags_the_cap_and_records_tokens():
    found = truncation_guard(GuardInput("caption", "A long", num_tokens=2048, hit_token_cap=True))
    assert found.flags == ("truncated:caption",) and found.scores == {"caption_tokens": 2048}
    quiet = truncation_guard(GuardInput("caption", "Done.", num_tokens=3, hit_token_cap=False))
    assert quiet.flags == () and quiet.scores == {"caption_tokens": 3}


@pytest.mark.parametrize("text,empty", [("", True), ("   \n", True), ("…", True), (None, True), ("a", False),
                                        ("好", False), ("42", False)])
def test_empty(text, empty):
    assert empty_guard(GuardInput("transcript", text)).flags == (("empty:transcript",) if empty else ())


# ---------------------------------------------------------------- caption-transcript agreement

def caption(text, transcript_text):
    return GuardInput("caption", text, SegmentContext(transcript=transcript_text))


def test_quoted_spans_ignore_apostrophes():
    text = 'A man says "we leave at dawn" and “bring the maps”; the dog\'s bark, then «à demain les amis».'
    assert quoted_spans(text) == ["we leave at dawn", "bring the maps", "à demain les amis"]
    assert quoted_spans("她说「我们明天出发」然后离开") == ["我们明天出发"]


def test_caption_quoting_unheard_speech_is_flagged():
    item = caption('A man says, "Welcome back to the show," over rain.', "So today we talk about the weather.")
    assert agreement_guard(item).flags == (AGREEMENT_FLAG,)


@pytest.mark.parametrize("text,heard", [
    ('A man says, "Welcome back to the show," over rain.', "welcome back to the show everybody"),
    ('A man says "welcome back to teh show".', "Welcome back to the show."),  # a misspelt word: most bigrams agree
    ('A whoosh, then "bang!" twice.', "Hello there."),  # too short to be quoted speech
    ("Rain on a tin roof, no speech.", ""),  # nothing quoted
])
def test_caption_agreeing_with_transcript_is_quiet(text, heard):
    assert agreement_guard(caption(text, heard)).flags == ()


def test_agreement_in_cjk():
    assert agreement_guard(caption("一个男人说「我们明天一早出发」", "我们明天一早出发，请把地图带上。")).flags == ()
    assert agreement_guard(caption("一个男人说「欢迎收看本期节目」", "我们明天一早出发。")).flags == (AGREEMENT_FLAG,)


def test_agreement_needs_both_texts():
    assert agreement_guard(caption('He says "we leave at dawn".', None)).flags == ()
    # An emptied transcript still exists: the VAD heard no speech, so a quote is unheard.
    assert agreement_guard(caption('He says "we leave at dawn".', "")).flags == (AGREEMENT_FLAG,)
    assert agreement_guard(GuardInput("transcript", '"we leave at dawn"', SegmentContext(transcript=""))).flags == ()


def test_unheard_quotes_lists_only_the_missing_ones():
    text = 'He says "we leave at dawn" and then "the dragon has landed".'
    assert unheard_quotes(text, "We leave at dawn, I think.") == ["the dragon has landed"]


def test_with_agreement_flag_is_idempotent_and_drops_stale_flags():
    flags = ("truncated:caption",)
    once = with_agreement_flag(flags, 'He says "we leave at dawn".', "Nothing like that.")
    assert once == (AGREEMENT_FLAG, "truncated:caption")
    assert with_agreement_flag(once, 'He says "we leave at dawn".', "Nothing like that.") == once
    assert with_agreement_flag(once, 'He says "we leave at dawn".', "We leave at dawn!") == flags


# ---------------------------------------------------------------- running all of them

def test_check_runs_every_guard_once_in_order():
    item = GuardInput("transcript", "Thank you. " * 30, SegmentContext(2.0, 0.9, "English"), num_tokens=1024,
                      hit_token_cap=True)
    report = check(item)
    assert report.flags == ("repetition:transcript", "truncated:transcript", "rate:transcript")
    assert set(report.scores) == {"compression_ratio", "transcript_tokens", "chars_per_s"}
    assert report.text == item.text and report.raw_text is None


def test_emptied_transcript_is_not_an_empty_output():
    report = check(transcript("Thank you. " * 30, speech_ratio=0.0))
    assert report.flags == ("repetition:transcript", "speech_in_silence:transcript")
    assert report.text == ""


def test_check_batch_keeps_order():
    items = [transcript("Hello there, how are you?", duration_s=2.0), transcript("", speech_ratio=0.0),
             transcript("la " * 20)]
    assert [r.flags for r in check_batch(items)] == [(), ("empty:transcript",), ("repetition:transcript",)]
