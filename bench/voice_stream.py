"""Voice-back speed: first streamed chunk latency and real-time factor of `speak`'s model path.

    python bench/voice_stream.py                       # tiny-random on this machine (checks the script)
    python bench/voice_stream.py --full-shapes --json $OUT/voice.json   # on a GPU: released talker shapes

`--full-shapes` builds Qwen3-Omni-30B-A3B-Instruct shapes with random bf16
weights on the GPU: the thinker as in ARCHITECTURE §2/§6, and the talker, MTP
code predictor and code2wav with the values below (taken from the released
Instruct config.json as we know it; pass `--config FILE` to use a real one).
Random weights never stop on their own, so every run generates exactly
`--codes` codec frames (12.5 per second of audio). The tokenizer is
tiny-random's, with the config's special-token ids pointed at it, so the
talker inputs are laid out exactly as for the real model.

Figures: first-chunk latency (call to first audio in --stream mode), RTF
(wall time / audio time, lower is better) for streaming one text, and for
batches of pieces as `speak` voices them without --stream.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ scripts are loaded by path, not as a package

from thinker_shapes import FULL_TEXT, REPO, import_project  # noqa: E402

TALKER_TEXT = dict(hidden_size=1024, intermediate_size=2048, num_hidden_layers=20, num_attention_heads=16,
                   num_key_value_heads=2, head_dim=128, num_local_experts=128, num_experts_per_tok=6,
                   moe_intermediate_size=384, shared_expert_intermediate_size=768, vocab_size=3072,
                   rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                    "mrope_section": [24, 20, 20], "interleaved": True})
CODE_PREDICTOR = dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=5, num_attention_heads=16,
                      num_key_value_heads=8, head_dim=128, vocab_size=2048, num_code_groups=16)
CODE2WAV = dict(hidden_size=1024, num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=16,
                intermediate_size=3072, codebook_size=2048, num_quantizers=16, decoder_dim=1536,
                upsample_rates=[8, 5, 4, 3], upsampling_ratios=[2, 2], sliding_window=72)
TEXT = ("The weekly planning meeting agreed on the field-recording budget. The transcription backlog of forty "
        "hours will be captioned tonight, and the captions reviewed tomorrow before lunch. ") * 3


def full_shapes_model(tiny, device: str = "cuda", released: dict | None = None):
    """Instruct shapes, random bf16 weights, on the GPU, speaking tiny-random's token ids.

    `released`: a real Instruct config.json (as a dict); its shapes, codec ids and speakers replace the
    values above, while the text-token ids stay tiny-random's so its tokenizer still fits.
    """
    import torch
    from transformers import Qwen3OmniMoeConfig, Qwen3OmniMoeForConditionalGeneration

    thinker_cfg = tiny.model.config.thinker_config.to_dict()
    thinker_cfg["text_config"].update(FULL_TEXT)  # the 30B-A3B thinker, as gpu_throughput.py builds it
    thinker_cfg["audio_config"].update(output_dim=2048)
    talker_cfg = tiny.model.config.talker_config.to_dict()
    codec = dict(thinker_hidden_size=2048, accept_hidden_layer=24, num_code_groups=16,
                 codec_eos_token_id=2150, codec_nothink_id=2155, codec_think_bos_id=2156,
                 codec_think_eos_id=2157, codec_pad_id=2148, codec_bos_id=2149,
                 speaker_id={"ethan": 2302, "chelsie": 2301, "aiden": 2303})
    talker_text, predictor, code2wav = TALKER_TEXT, CODE_PREDICTOR, CODE2WAV
    if released:
        real = released["talker_config"]
        talker_text, predictor = real["text_config"], real["code_predictor_config"]
        code2wav = released["code2wav_config"]
        codec = {k: real[k] for k in codec if k in real}
        thinker_cfg["text_config"].update(released["thinker_config"]["text_config"])
        thinker_cfg["audio_config"].update(released["thinker_config"]["audio_config"])
    talker_cfg["text_config"].update(talker_text)
    talker_cfg["code_predictor_config"].update(predictor)
    talker_cfg.update(codec)
    # Per-layer lists sized for the tiny model would contradict the new layer counts; the defaults are right.
    for part in (thinker_cfg["text_config"], talker_cfg["text_config"], talker_cfg["code_predictor_config"]):
        part.pop("layer_types", None)
    config = tiny.model.config.to_dict()
    config.update(thinker_config=thinker_cfg, talker_config=talker_cfg,
                  code2wav_config={**{k: v for k, v in tiny.model.config.code2wav_config.to_dict().items()
                                      if k != "layer_types"}, **code2wav},
                  enable_audio_output=True)
    config = Qwen3OmniMoeConfig(**{k: v for k, v in config.items() if k not in ("architectures", "model_type")})
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3OmniMoeForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    return model.eval()


def sentence_splitter():
    """`speak`'s own splitter (pipelines/voice_pieces.py), read by path: importing it through its package
    would import the whole data plane (duckdb, torchcodec, soundfile), which the GPU image does not have."""
    spec = importlib.util.spec_from_file_location("voice_pieces", REPO / "pipelines" / "voice_pieces.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.split_into_pieces


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-shapes", action="store_true", help="Instruct shapes, random bf16, needs a GPU")
    parser.add_argument("--codes", type=int, default=150, help="codec frames per text (12.5 per second)")
    parser.add_argument("--batches", default="1,4,8", help="batch sizes for the non-streamed path")
    parser.add_argument("--json", default=None, help="write the figures here too")
    parser.add_argument("--config", default=None, help="a released Instruct config.json for the shapes")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    import_project()

    import torch

    from omni_caption.model import LoadOptions, Prompt, load_model
    from omni_caption.model.voice_qwen3 import READ_ALOUD_REQUEST, voice_texts
    from omni_caption.model.voicing import VoiceOptions
    split_into_pieces = sentence_splitter()

    omni = load_model("tiny-random", LoadOptions(voice=True))
    if args.full_shapes:
        released = json.loads(open(args.config).read()) if args.config else None
        omni.model, omni.device = full_shapes_model(omni, "cuda", released), "cuda"
    device = omni.device
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    options = VoiceOptions(do_sample=True, max_codes=args.codes, min_codes=args.codes)
    prompt = Prompt(text=READ_ALOUD_REQUEST)
    piece = split_into_pieces(TEXT, 250)[0]
    figures = {"device": torch.cuda.get_device_name(0) if str(device).startswith("cuda") else "cpu",
               "full_shapes": args.full_shapes, "codes": args.codes, "audio_s": args.codes / 12.5, "runs": []}
    voice_texts(omni, [piece], "ethan", prompt, VoiceOptions(do_sample=True, max_codes=4, min_codes=4))  # warm-up

    first: list[float] = []
    sync()
    start = time.perf_counter()
    voice_texts(omni, [piece], "ethan", prompt, options,
                on_audio=lambda _s: first.append(time.perf_counter() - start) if not first else None)
    sync()
    wall = time.perf_counter() - start
    figures["runs"].append({"mode": "stream", "batch": 1, "first_chunk_ms": round(1000 * first[0], 1),
                            "wall_s": round(wall, 3), "rtf": round(wall / (args.codes / 12.5), 3)})
    for batch in (int(b) for b in args.batches.split(",")):
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        sync()
        start = time.perf_counter()
        voice_texts(omni, [piece] * batch, "ethan", prompt, options)
        sync()
        wall = time.perf_counter() - start
        run = {"mode": "batch", "batch": batch, "wall_s": round(wall, 3),
               "rtf": round(wall / (batch * args.codes / 12.5), 3)}
        if torch.cuda.is_available():
            run["peak_GiB"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
        figures["runs"].append(run)
    print(f"device {figures['device']}, full shapes: {args.full_shapes}, {args.codes} codes = "
          f"{figures['audio_s']:.1f} s of audio per text")
    print(f"{'mode':<7}{'batch':>6}{'first chunk ms':>16}{'wall s':>9}{'RTF':>8}")
    for run in figures["runs"]:
        print(f"{run['mode']:<7}{run['batch']:>6}{run.get('first_chunk_ms', ''):>16}{run['wall_s']:>9}"
              f"{run['rtf']:>8}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
