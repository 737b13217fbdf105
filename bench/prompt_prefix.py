"""How much of each task's prompt is a prefix shared by every segment, and so could be computed once.

    python bench/prompt_prefix.py [--model tiny-random|PATH] [--json FILE]

Issue #7 lists "a shared prompt prefix computed once" among the levers. This
builds each segment task's real prompt (chat template, processor) for clips of
different lengths and contents, and measures the longest run of token ids at
the start that all of them share, against the whole prompt. The prefill of
those tokens is all a prefix cache could save. Decoder-only attention is
causal, so a prompt's instruction text, which the template places after the
audio, depends on the audio and cannot be shared.

tiny-random's tokenizer is made here and splits English more finely than
Qwen's (about 2 characters a token instead of 4), so its instruction counts
err high; the template's special tokens, and so the prefix, are the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLIP_SECONDS = (30.0, 17.5, 8.0)  # a full chunk and two shorter ones: lengths differ, so contents do


def shared_prefix_length(sequences: list[list[int]]) -> int:
    """The number of leading ids every sequence has in common."""
    shortest = min(len(s) for s in sequences)
    for i in range(shortest):
        if len({s[i] for s in sequences}) > 1:
            return i
    return shortest


def measure(model: str, cache_dir: str | None = None) -> list[dict]:
    from omni_caption.captioner.tasks import SEGMENT_TASKS, TaskConfig
    from omni_caption.model import LoadOptions, load_model
    from omni_caption.model.generation import prepare_inputs

    omni = load_model(model, LoadOptions(device="cpu", cache_dir=cache_dir))
    audio_id = omni.model.config.thinker_config.audio_token_id
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, int(s * 16_000)).astype(np.float32) for s in CLIP_SECONDS]
    rows = []
    for task in SEGMENT_TASKS:
        prompt = TaskConfig(name=task, model=model).prompt()
        ids = [prepare_inputs(omni, [clip], [prompt])["input_ids"][0].tolist() for clip in clips]
        # Audio placeholders share one id but are replaced by each clip's own encoder output: mark them apart.
        shared = shared_prefix_length([[-1 - n if t == audio_id else t for t in seq] for n, seq in enumerate(ids)])
        full = ids[0]  # the 30 s clip: the usual chunk
        rows.append({"task": task, "prompt_tokens": len(full), "audio_tokens": full.count(audio_id),
                     "shared_prefix_tokens": shared, "shared_share": round(shared / len(full), 4)})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random", help="preset, local folder or hub id (offline)")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = measure(args.model, args.cache_dir)
    print(f"{'task':<11} {'prompt':>7} {'audio':>6} {'shared prefix':>14} {'share':>7}")
    for row in rows:
        print(f"{row['task']:<11} {row['prompt_tokens']:>7} {row['audio_tokens']:>6} "
              f"{row['shared_prefix_tokens']:>14} {row['shared_share']:>7.1%}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
