"""Task logic on crafted model outputs (no model needed: GenerationResult is plain data)."""

import pytest

from omni_caption.captioner import (PROMPT_VERSION, TaskConfig, normalise_language, read_output,
                                    split_language_line, split_think)
from omni_caption.captioner import prompts
from omni_caption.model import GenerationResult


def result(text, capped=False, tokens=10):
    return GenerationResult(text=text, token_ids=tuple(range(tokens)), num_tokens=tokens,
                            hit_token_cap=capped, mean_logprob=-0.25)


@pytest.mark.parametrize("text,expected", [
    ("<think>dog, then rain</think>A dog barks in the rain.", ("dog, then rain", "A dog barks in the rain.", None)),
    ("dog, then rain</think>\n\nAnswer.", ("dog, then rain", "Answer.", None)),  # <think> was in the prompt
    ("<think>still thinking when cut off", ("still thinking when cut off", None, "unclosed_think")),
    ("Just an answer.", (None, "Just an answer.", "no_think")),
    ("<think></think>", ("", None, None)),
])
def test_split_think(text, expected):
    assert split_think(text) == expected


def test_split_language_line():
    assert split_language_line("Language: german\nGuten Morgen.") == ("German", "Guten Morgen.")
    assert split_language_line("Guten Morgen.") == (None, "Guten Morgen.")
    assert split_language_line("Language: Klingon\nnuqneH") == (None, "nuqneH")


def test_caption_uses_model_card_sampling_and_no_text_prompt():
    task = TaskConfig("caption", "captioner", max_new_tokens=2048)
    assert task.prompt().text is None and task.prompt().system is None
    d = task.decoding()
    assert (d.do_sample, d.temperature, d.top_p, d.top_k, d.max_new_tokens) == (True, 0.6, 0.95, 20, 2048)
    assert not TaskConfig("caption", "captioner", greedy=True).decoding().do_sample


def test_transcript_prompts_follow_model_card():
    assert TaskConfig("transcript", "instruct", language="English").prompt().text == \
        "Transcribe the English audio into text."
    assert TaskConfig("transcript", "instruct", language="Chinese").prompt().text == "请将这段中文语音转换为纯文本。"
    assert not TaskConfig("transcript", "instruct").decoding().do_sample


def test_config_hash_changes_with_anything_that_changes_output():
    base = TaskConfig("transcript", "instruct", language="English")
    assert base.config_hash() == TaskConfig("transcript", "instruct", language="English").config_hash()
    for other in (TaskConfig("transcript", "instruct", language="German"),
                  TaskConfig("transcript", "other/model", language="English"),
                  TaskConfig("transcript", "instruct", language="English", max_new_tokens=10),
                  TaskConfig("transcript", "instruct", language="English", loop_stop_tokens=0)):
        assert other.config_hash() != base.config_hash()


def test_datasets_made_before_the_loop_stop_keep_their_hash_with_loops_left_to_run():
    # Hashes of these configs before the loop stop existed (commit b4d2fd2): a dataset made then resumes.
    assert TaskConfig("transcript", "instruct", language="English", loop_stop_tokens=0).config_hash() == \
        "4f23625554913a6f"
    assert TaskConfig("caption", "captioner", max_new_tokens=2048, loop_stop_tokens=0).config_hash() == \
        "514a1787ca6ade02"


def test_every_task_stops_loops_unless_told_not_to():
    from omni_caption.captioner.tasks import DEFAULT_LOOP_STOP_TOKENS
    from omni_caption.model.loop_stop import LoopStop

    for name in ("caption", "transcript", "summary"):
        assert TaskConfig(name, "captioner").decoding().loop_stop == LoopStop(min_tokens=DEFAULT_LOOP_STOP_TOKENS)
    assert TaskConfig("caption", "captioner", loop_stop_tokens=300).decoding().loop_stop.min_tokens == 300
    assert TaskConfig("caption", "captioner", loop_stop_tokens=0).decoding().loop_stop is None
    with pytest.raises(ValueError, match="loop_stop_tokens"):
        TaskConfig("caption", "captioner", loop_stop_tokens=1)


def test_prompt_version_tracks_every_template():
    assert PROMPT_VERSION == prompts.templates_digest(prompts.TEMPLATES)
    for key in prompts.TEMPLATES:
        changed = {**prompts.TEMPLATES, key: f"{prompts.TEMPLATES[key]} (edited)"}
        assert prompts.templates_digest(changed) != PROMPT_VERSION, key


def test_read_output_flags_truncation_and_empty():
    task = TaskConfig("caption", "captioner")
    out = read_output(task, result("", capped=True, tokens=2048))
    assert out.flags == ["truncated:caption", "empty:caption"]
    assert out.scores == {"caption_avg_logprob": -0.25, "caption_tokens": 2048}
    clean = read_output(task, result("Birds sing."))
    assert clean.flags == [] and clean.columns == {"caption": "Birds sing."}


def test_reasoning_columns():
    out = read_output(TaskConfig("reasoning", "thinking"), result("<think>a</think>b"))
    assert out.columns == {"reasoning": "a", "answer": "b"} and out.flags == []


@pytest.mark.parametrize(("given", "name"), [
    ("en", "English"), ("FRENCH", "French"), ("deu", "German"), ("ger", "German"), ("Mandarin", "Chinese"),
    # Locales as users and their tools write them (BCP 47, POSIX): the language before the region or script.
    ("en-US", "English"), ("pt_BR", "Portuguese"), ("zh-Hant-TW", "Chinese"), ("de_DE.UTF-8", "German"),
    ("yue-HK", "Cantonese"), ("zh-yue", "Cantonese"), (" es-419 ", "Spanish"), ("Bahasa Indonesia", "Indonesian")])
def test_language_names_codes_and_locales(given, name):
    assert normalise_language(given) == name


@pytest.mark.parametrize("given", ["tlh", "Klingon", "xx-US", "fa", "-en"])
def test_a_language_the_model_does_not_hear_is_refused(given):
    with pytest.raises(ValueError, match="hears English.*pt-BR"):
        normalise_language(given)


def test_unknown_task_refused():
    with pytest.raises(ValueError, match="unknown task"):
        TaskConfig("summarise", "x")


def test_read_output_judges_the_transcript_without_its_language_line():
    out = read_output(TaskConfig("transcript", "instruct"), result("Language: English\n"))
    assert out.columns == {"transcript": "", "language": "English"}
    assert out.flags == ["empty:transcript"]
    assert read_output(TaskConfig("caption", "captioner"), result("…")).flags == ["empty:caption"]


def test_families_without_a_captioner_are_asked_for_a_caption_in_words():
    qwen3 = TaskConfig(name="caption", model="captioner")
    qwen25 = TaskConfig(name="caption", model="qwen2.5-omni-7b", family="qwen2.5-omni")
    assert qwen3.prompt().text is None  # the Captioner hears audio alone
    assert qwen25.prompt().text == prompts.PROMPTED_CAPTION_TEXT
    assert qwen25.prompt_version != qwen3.prompt_version == prompts.PROMPT_VERSION
    # Adding a family leaves Qwen3 datasets' prompt version (their resume key) as it was.
    assert prompts.PROMPT_VERSION == prompts.templates_digest(prompts.TEMPLATES)


def test_reasoning_is_refused_for_a_family_without_a_thinking_model():
    from omni_caption.model.families import UnsupportedFeatureError

    with pytest.raises(UnsupportedFeatureError, match="Qwen2.5-Omni has none.*--reasoning-model thinking"):
        TaskConfig(name="reasoning", model="qwen2.5-omni-3b", family="qwen2.5-omni")
    assert TaskConfig(name="summary", model="qwen2.5-omni-3b", family="qwen2.5-omni")  # summaries need no trace
