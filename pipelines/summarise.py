"""The recording-level summary stage: one summary per recording, stored on each of its rows.

From text (default): the ordered, timestamped captions and transcripts the
segment stages wrote, split and map-reduced when long, so any length works.
From audio: the Thinking model hears the recording itself, up to 40 minutes
(about 31k audio tokens) per call; longer recordings are split at chunk
edges, summarised part by part, and the parts reduced in text.
"""

from __future__ import annotations

from omni_caption.captioner import SegmentText, TaskConfig, plan_summary, run_summary_plans, summary_shrinking_on_oom
from omni_caption.captioner.prompts import SUMMARY_AUDIO_TEXT, SUMMARY_REDUCE_TEXT
from omni_caption.captioner.summary import cut_flags, final_summary, format_span, partial_answer
from omni_caption.model import DecodingOptions, GenerationResult, OmniModel, Prompt, generate_batch, generate_text
from omni_caption.model.batch_sizing import chunks_within, is_out_of_memory, run_halving_on_oom
from omni_caption.model.decode_runtime import DecodeRuntime
from omni_caption.model.family_qwen3 import QWEN3_OMNI
from omni_caption.schemas import ModelIds, SegmentRow, format_config_hash

from .progress import PartialProgress
from .segmenter import Recording

MAX_AUDIO_SUMMARY_S = QWEN3_OMNI.max_audio_s_per_call


def summary_rows(omni: OmniModel, config: TaskConfig, recordings: list[Recording],
                 texts: dict[str, list[SegmentRow]], runtime: DecodeRuntime, prompt_version: str,
                 on_progress: PartialProgress | None = None) -> list[SegmentRow]:
    """Rows carrying the summary for every segment of each recording (`texts`: merged rows by sha256).

    Text summaries go in batches of the runtime's limit; a CUDA OOM halves the batch, retries both
    halves and lowers the limit, as for segments. Summaries from audio go one recording at a time (up to
    40 min of audio a call), and `on_progress` hears after each.
    """
    decoding = config.decoding()
    if config.summary_from == "audio":
        found, audio_done_s = [], 0.0
        for done, rec in enumerate(recordings, start=1):
            found.append(_from_audio_within_memory(omni, rec, decoding, runtime))
            audio_done_s += rec.duration_s
            if on_progress is not None:
                on_progress(done, audio_done_s)
    else:
        found = _from_text(omni, recordings, texts, decoding, runtime)
    hashes = format_config_hash({"summary": config.config_hash()})
    rows = []
    for rec, result in zip(recordings, found):
        if isinstance(result, str):  # it could not be summarised on this GPU: the error row says why
            rows.append(SegmentRow.error_row(rec.source.source_path, result, sha256=rec.sha256, config_hash=hashes))
            continue
        summary, reasoning, flags = result
        rows += [rec.segment_row(index, summary=summary, summary_reasoning=reasoning, flags=tuple(flags),
                                 models=ModelIds(summary=omni.model_label), prompt_version=prompt_version,
                                 config_hash=hashes)
                 for index in range(len(rec.segments))]
    return rows


def _batched(omni: OmniModel, decoding: DecodingOptions, runtime: DecodeRuntime):
    """summarise(prompts) in batches of the runtime's limit, halving on OOM. Every result is kept by its
    prompt, so a retry after an OOM that no halving could help reruns only the prompts that did not run."""
    done: dict[str, GenerationResult] = {}

    def generate(texts: list[str]):
        results = generate_text(omni, [Prompt(text=t) for t in texts], decoding, runtime.decoder, runtime.limit.size)
        done.update(zip(texts, results))
        return results

    def summarise(prompts: list[str]):
        for chunk in chunks_within([p for p in dict.fromkeys(prompts) if p not in done], lambda: runtime.limit.size):
            run_halving_on_oom(generate, chunk, runtime.limit, runtime.free_after_oom, runtime.in_flight)
        return [done[p] for p in prompts]

    return summarise


def _from_text(omni, recordings, texts, decoding, runtime):
    """All recordings' map-reduce rounds in lockstep; if one prompt does not fit even alone, each recording
    is summarised on its own again, its pieces shrinking until they fit (or its error row says why)."""
    sources = []
    for rec in recordings:
        rows = sorted(texts.get(rec.sha256, []), key=lambda r: r.start_s or 0.0)
        sources.append([SegmentText(r.start_s, r.end_s, r.caption, r.transcript, r.speaker)
                        for r in rows if r.status == "ok"])
    plans = [plan_summary(source) for source in sources]
    summarise = _batched(omni, decoding, runtime)
    try:
        done = iter(run_summary_plans([p for p in plans if p is not None], summarise))
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        runtime.free_after_oom()
        done = None
    found = []
    for plan, source in zip(plans, sources):
        if plan is None:  # no caption or transcript had words: nothing to summarise, no call made
            found.append((None, None, ["empty:summary"]))
            continue
        result = next(done) if done is not None else summary_shrinking_on_oom(
            source, summarise, is_out_of_memory, runtime.free_after_oom)
        found.append(result if isinstance(result, str) else (result.summary, result.reasoning, list(result.flags)))
    return found


def _from_audio_within_memory(omni: OmniModel, rec: Recording, decoding: DecodingOptions, runtime: DecodeRuntime):
    """The audio summary in calls of up to the family's limit; a CUDA OOM halves the span each call hears
    (more parts, reduced in text), down to one chunk per call. Returns the one-line error if even that fails."""
    max_s = omni.family.max_audio_s_per_call
    spans = _audio_spans(rec, max_s)
    while True:
        try:
            return _from_audio(omni, rec, decoding, spans)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
        runtime.free_after_oom()
        shorter = spans
        while shorter == spans and max_s > 1:
            max_s /= 2
            shorter = _audio_spans(rec, max_s)
        if shorter == spans:
            return (f"CUDA out of memory summarising {max(e - s for s, e in spans):.1f} s of audio in one call, "
                    "even one chunk per call; use --summary-from text")
        spans = shorter


def _from_audio(omni: OmniModel, rec: Recording, decoding: DecodingOptions, spans: list[tuple[float, float]]):
    results = [generate_batch(omni, [rec.read_span(start, end)], Prompt(text=SUMMARY_AUDIO_TEXT), decoding)[0]
               for start, end in spans]
    cut = cut_flags(results)
    final = results[0]
    if len(results) > 1:
        parts = "\n".join(f"[{format_span(s, e)}] {partial_answer(r)}" for (s, e), r in zip(spans, results))
        final = generate_text(omni, [Prompt(text=SUMMARY_REDUCE_TEXT.format(source=parts))], decoding)[0]
        cut |= cut_flags([final])
    result = final_summary(final, cut, (len(results),) + ((1,) if len(results) > 1 else ()))
    return result.summary, result.reasoning, list(result.flags)


def _audio_spans(rec: Recording, max_s: float = MAX_AUDIO_SUMMARY_S) -> list[tuple[float, float]]:
    """Spans of at most `max_s` (what one call of the model's family can hear; 40 min for Qwen3-Omni),
    ending on chunk edges (which lie in pauses)."""
    spans, start = [], rec.segments[0].start_s if rec.segments else 0.0
    end = start
    for segment in rec.segments:
        if segment.end_s - start > max_s and end > start:
            spans.append((start, end))
            start = end
        end = segment.end_s
    if end > start:
        spans.append((start, end))
    return spans
