"""Every prompt the toolkit sends, in one place.

`PROMPT_VERSION` is a digest of this module's templates: change any of them
and datasets built with the new prompts carry a different `prompt_version`.
"""

from __future__ import annotations

import hashlib
import json

# The Captioner is trained on audio alone: no system prompt, no text.
CAPTION_TEXT: str | None = None
# Families without a dedicated captioner (Qwen2.5-Omni) are asked for the same kind of caption in words.
PROMPTED_CAPTION_TEXT = (
    "Describe this audio in detail: the sounds and sound events, any speech (who speaks, how, in what "
    "language, and what is said), music, and the acoustic scene. Describe only what you hear."
)

# Model card ASR prompts (Qwen3-Omni Instruct).
TRANSCRIPT_TEXT = "Transcribe the {language} audio into text."
TRANSCRIPT_TEXT_CHINESE = "请将这段中文语音转换为纯文本。"
# Without --language: ask for the language first so it can be stored.
TRANSCRIPT_TEXT_ANY_LANGUAGE = (
    "Transcribe the audio into text. First write the spoken language on its own line as "
    "'Language: <name>', then the transcript."
)

REASONING_QUESTION = (
    "What is happening in this audio, and who is speaking? Give the evidence you hear for each point."
)

SUMMARY_TEXT = (
    "Below are the timestamped captions and transcripts of one audio recording, in order. "
    "Summarise the whole recording: what happens, who speaks, and the main points, "
    "citing the timestamps of key moments.\n\n{source}"
)
SUMMARY_PART_TEXT = (
    "Below are the timestamped captions and transcripts of part {part} of {parts} ({span}) of one audio "
    "recording, in order. Summarise this part: what happens, who speaks, and the main points, "
    "citing the timestamps of key moments.\n\n{source}"
)
SUMMARY_REDUCE_TEXT = (
    "Below are summaries of consecutive parts of one audio recording, in order, each headed by its time span. "
    "Combine them into one summary of the whole recording, keeping the timestamps of key moments.\n\n{source}"
)
# --summary-from audio: the model hears the recording (or a <= 40 min part of it) itself.
SUMMARY_AUDIO_TEXT = (
    "Summarise this recording: what happens, who speaks, and the main points, with approximate times of key "
    "moments."
)

TEMPLATES = {
    "caption": CAPTION_TEXT,
    "transcript": TRANSCRIPT_TEXT,
    "transcript_zh": TRANSCRIPT_TEXT_CHINESE,
    "transcript_any": TRANSCRIPT_TEXT_ANY_LANGUAGE,
    "reasoning": REASONING_QUESTION,
    "summary": SUMMARY_TEXT,
    "summary_part": SUMMARY_PART_TEXT,
    "summary_reduce": SUMMARY_REDUCE_TEXT,
    "summary_audio": SUMMARY_AUDIO_TEXT,
}

# Templates only some families use, per family name; kept out of TEMPLATES so adding a family leaves the
# prompt version (and with it the resume key) of every other family's datasets unchanged.
FAMILY_TEMPLATES = {"qwen2.5-omni": {"caption": PROMPTED_CAPTION_TEXT}}


def templates_digest(templates: dict) -> str:
    return hashlib.sha256(json.dumps(templates, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]


def prompt_version(family: str = "qwen3-omni") -> str:
    """The digest of every template a model of `family` is sent."""
    family_templates = FAMILY_TEMPLATES.get(family)
    if not family_templates:
        return templates_digest(TEMPLATES)
    return templates_digest({**TEMPLATES, **{f"{family}:{k}": v for k, v in family_templates.items()}})


def caption_text(family: str = "qwen3-omni") -> str | None:
    return FAMILY_TEMPLATES.get(family, {}).get("caption", CAPTION_TEXT)


PROMPT_VERSION = prompt_version()

# The 19 speech-input languages of the Qwen3-Omni model card.
SPEECH_LANGUAGES = (
    "English", "Chinese", "Korean", "Japanese", "German", "Russian", "Italian", "French", "Spanish",
    "Portuguese", "Malay", "Dutch", "Indonesian", "Turkish", "Vietnamese", "Cantonese", "Arabic", "Urdu",
    "Hindi",
)


def transcript_prompt(language: str | None) -> str:
    if language is None:
        return TRANSCRIPT_TEXT_ANY_LANGUAGE
    if language.lower() in ("chinese", "zh", "mandarin"):
        return TRANSCRIPT_TEXT_CHINESE
    return TRANSCRIPT_TEXT.format(language=language)


def normalise_language(language: str | None) -> str | None:
    """Accept 'english', 'English' or 'en'; reject languages the model does not hear."""
    if language is None:
        return None
    codes = {"en": "English", "zh": "Chinese", "ko": "Korean", "ja": "Japanese", "de": "German",
             "ru": "Russian", "it": "Italian", "fr": "French", "es": "Spanish", "pt": "Portuguese",
             "ms": "Malay", "nl": "Dutch", "id": "Indonesian", "tr": "Turkish", "vi": "Vietnamese",
             "yue": "Cantonese", "ar": "Arabic", "ur": "Urdu", "hi": "Hindi"}
    by_name = {name.lower(): name for name in SPEECH_LANGUAGES}
    key = language.strip().lower()
    if key in codes:
        return codes[key]
    if key in by_name:
        return by_name[key]
    raise ValueError(f"--language {language!r}: Qwen3-Omni hears {', '.join(SPEECH_LANGUAGES)}")
