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


# ISO 639-1 and 639-2/3 codes (both of 639-2's, bibliographic and terminologic) of SPEECH_LANGUAGES, and
# other names they go by.
LANGUAGE_CODES = {
    "English": ("en", "eng"), "Chinese": ("zh", "zho", "chi", "cmn", "mandarin"), "Korean": ("ko", "kor"),
    "Japanese": ("ja", "jpn"), "German": ("de", "deu", "ger"), "Russian": ("ru", "rus"),
    "Italian": ("it", "ita"), "French": ("fr", "fra", "fre"), "Spanish": ("es", "spa", "castilian"),
    "Portuguese": ("pt", "por"), "Malay": ("ms", "msa", "may", "zsm", "bahasa melayu"),
    "Dutch": ("nl", "nld", "dut", "flemish"), "Indonesian": ("id", "ind", "bahasa indonesia"),
    "Turkish": ("tr", "tur"), "Vietnamese": ("vi", "vie"), "Cantonese": ("yue", "zh-yue"),
    "Arabic": ("ar", "ara"), "Urdu": ("ur", "urd"), "Hindi": ("hi", "hin"),
}
_LANGUAGE_BY_KEY = {key: name for name, keys in LANGUAGE_CODES.items() for key in (name.lower(), *keys)}


def normalise_language(language: str | None) -> str | None:
    """The model's name for `language`: 'english', 'English', 'en', 'eng', or a locale ('en-US', 'pt_BR',
    'zh-Hant-TW'), which names the language before its region or script; reject languages it does not hear."""
    if language is None:
        return None
    key = language.strip().lower().replace("_", "-")
    name = _LANGUAGE_BY_KEY.get(key) or _LANGUAGE_BY_KEY.get(key.split("-")[0].split(".")[0])
    if name is None:
        raise ValueError(f"--language {language!r}: Qwen3-Omni hears {', '.join(SPEECH_LANGUAGES)} "
                         f"(a name, an ISO 639 code, or a locale such as pt-BR)")
    return name
