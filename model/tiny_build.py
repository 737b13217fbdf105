"""What every tiny random model shares: tokenizer, chat template, processor, atomic cached build.

Each family's builder (`tiny_random.py` for Qwen3-Omni, `tiny_random_25.py`
for Qwen2.5-Omni) only supplies its config, its special-token names and its
model class; the tokenizer training, the chat template and the build-then-
rename into the cache are the same code for both.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .hf_quiet import quiet_transformers
from .hub import ModelLoadError

NONSENSE_NOTICE = "tiny-random: random weights, every output is nonsense (tests and offline demo only)"
TINY_RANDOM_SEED = 0
# Qwen keeps the think markers as ordinary (non-special) added tokens so they survive decoding.
THINK_TOKENS = ("<think>", "</think>")
# The placeholder the shared chat template is written with; each family substitutes its own tokens.
TEMPLATE_AUDIO_PLACEHOLDER = "<|audio_start|><|audio_pad|><|audio_end|>"


@dataclass(frozen=True)
class TokenizerSpec:
    """A family's token names: specials (one id each), the processor's named tokens, and the id budget."""

    special_tokens: tuple[str, ...]
    named_tokens: dict  # extra_special_tokens: image_token, audio_token, ... -> token string
    max_ids: int  # every tokenizer id is below this (the thinker vocab may reserve ids above it)

    @property
    def audio_placeholder(self) -> str:
        named = self.named_tokens
        return named["audio_bos_token"] + named["audio_token"] + named["audio_eos_token"]


def training_corpus() -> list[str]:
    # Role names and "\n" must each come out as one token: the talker finds the
    # user and assistant turns by the single token after <|im_start|>.
    roles = ["user\n", "assistant\n", "system\n"] * 200
    words = ("the a speaker voice music audio bird dog rain wind meeting talks says calm loud quiet "
             "room street background noise people laugh English German Chinese language transcribe "
             "into text describe what is happening who speaking evidence summary recording").split()
    sentences = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(8)) + "." for i in range(300)]
    return roles + sentences + ["Transcribe the English audio into text.", "You are a helpful assistant."] * 20


def build_tokenizer(spec: TokenizerSpec):
    """A byte-level BPE trained locally, wrapped as Qwen2Tokenizer with the family's special tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # Same normaliser and pre-tokeniser as Qwen2Tokenizer, so the trained merges mean the same there.
    bpe = Tokenizer(BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=spec.max_ids - len(spec.special_tokens) - len(THINK_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    bpe.train_from_iterator(training_corpus(), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, extra_special_tokens=dict(spec.named_tokens))
    tokenizer.add_tokens([AddedToken(t, special=True) for t in spec.special_tokens])
    tokenizer.add_tokens(list(THINK_TOKENS))
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    for role in ("user", "assistant", "system", "\n"):
        assert len(tokenizer(role)["input_ids"]) == 1, f"{role!r} must be one token"
    assert len(tokenizer) <= spec.max_ids
    return tokenizer


def chat_template(audio_placeholder: str) -> str:
    """ChatML with the family's audio placeholder (the processor expands it to one token per encoder frame)."""
    template = resources.files(__package__).joinpath("chat_template.jinja").read_text()
    return template.replace(TEMPLATE_AUDIO_PLACEHOLDER, audio_placeholder)


def build_processor(processor_class, tokenizer, spec: TokenizerSpec):
    from transformers import WhisperFeatureExtractor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    feature_extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160,
                                                chunk_length=30, n_fft=400)
    return processor_class(
        image_processor=Qwen2VLImageProcessor(), video_processor=Qwen2VLVideoProcessor(),
        feature_extractor=feature_extractor, tokenizer=tokenizer,
        chat_template=chat_template(spec.audio_placeholder),
    )


def fill_uninitialised(module, std: float) -> None:
    """transformers 5.23 leaves fused MoE expert weights as torch.empty memory: fill them, or builds differ."""
    import torch

    for name, param in module.named_parameters():
        if ".experts." in name:
            torch.nn.init.normal_(param.data, std=std)


def save_tiny(staging: Path, model, tokenizer, spec: TokenizerSpec, processor_class, builder: str,
              version: str) -> None:
    """Save a built model the way releases ship: weights, generation config, processor, and a README."""
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(staging)
    build_processor(processor_class, tokenizer, spec).save_pretrained(staging)
    (staging / "README.md").write_text(f"# {NONSENSE_NOTICE}\n\nBuilt by omni-caption model/{builder} "
                                       f"v{version}, seed {TINY_RANDOM_SEED}.\n")


def cached_build(target: Path, build_into: Callable[[Path], None], marker: str = "config.json") -> Path:
    """`target`, built on first use into a temp folder beside it and renamed: concurrent builders never
    see half a model. `marker`: the file whose presence says the folder is whole."""
    target = Path(target)
    if (target / marker).exists():
        return target
    # Not mkdtemp: its 0700 would keep a cache folder shared by a team (OMNI_CAPTION_HOME) to its first user;
    # mkdir gives what the umask allows.
    staging = target.parent / f".{target.name}.{secrets.token_hex(6)}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    except OSError as exc:
        raise ModelLoadError(f"cannot build {target.name} in {target.parent} (the cache folder: --cache-dir, or "
                             f"OMNI_CAPTION_HOME): {exc.strerror or exc}") from exc
    try:
        with quiet_transformers():
            build_into(staging)
        _as_new_files_are(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / marker).exists():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _as_new_files_are(folder: Path) -> None:
    """Every file readable as the umask allows any new file: safetensors writes its weights 0600, which kept a
    team's shared cache folder's model to the user who built it (the folder's own mode is mkdir's, umask'd)."""
    mode = folder.stat().st_mode & 0o666
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(mode)
