"""`speak`: voice stored summaries or selected rows with the talker. The work is in pipelines.speak."""

from __future__ import annotations

from pathlib import Path

import click

from .completion import complete_model
from .config_file import load_config_file
from .dataset_commands import fail
from .option_values import parse_device
from .path_types import DatasetPath, UserPath
from .shown_text import printable

SPEAKERS_HELP = "Talker voice: ethan, chelsie or aiden (Qwen3-Omni); Chelsie or Ethan (Qwen2.5-Omni)."


@click.command(name="speak")
@click.argument("dataset", type=DatasetPath())
@click.option("--out", "-o", "out_dir", required=True, type=UserPath(file_okay=False, path_type=Path),
              help="Folder for the WAVs (24 kHz mono).")
@click.option("--speaker", default="ethan", show_default=True, help=SPEAKERS_HELP)
@click.option("--where", default=None, help="SQL predicate over the `segments` view selecting what to voice, "
              "e.g. \"source_path LIKE 'meetings/%'\".")
@click.option("--text-column", default="summary", show_default=True,
              help="Column to voice: summary / summary_reasoning (one WAV per recording) or caption, transcript, "
                   "answer, reasoning (one WAV per selected row).")
@click.option("--model", default="instruct", show_default=True, shell_complete=complete_model,
              help="A model with a talker (preset or path).")
@click.option("--stream", is_flag=True, help="Write each WAV as the audio is decoded, chunk by chunk.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Sentence pieces voiced together.")
@click.option("--max-piece-chars", default=250, show_default=True, type=click.IntRange(min=20),
              help="Longest piece of text the talker reads at once (cut at sentence ends).")
@click.option("--crossfade-ms", default=50, show_default=True, type=click.IntRange(min=0, max=500),
              help="Crossfade between pieces.")
@click.option("--greedy", is_flag=True, help="Greedy talker decoding (reproducible; sampling sounds better).")
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed.")
@click.option("--overwrite", is_flag=True, help="Voice again what was already voiced with the same settings.")
@click.option("--device", default="auto", show_default=True, callback=lambda c, p, v: parse_device(v),
              help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "bfloat16", "float16", "float32"]),
              help="auto: bfloat16 on GPU, float32 on CPU.")
@click.option("--cache-dir", default=None, type=UserPath(path_type=Path), help="Where tiny-random is built.")
@click.option("--config", type=UserPath(dir_okay=False), callback=load_config_file, is_eager=True,
              expose_value=False, help="TOML file whose [speak] table holds defaults for these options (the run's "
                                       "own --config file can carry it).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def speak_command(ctx, dataset, out_dir, speaker, where, text_column, model, stream, batch_size, max_piece_chars,
                  crossfade_ms, greedy, seed, overwrite, device, dtype, cache_dir, debug):
    """Voice the summaries (or any selected rows) of DATASET as WAV files, and record them in DATASET."""
    from omni_caption.model import LoadOptions
    from omni_caption.model.voicing import VoiceOptions
    from omni_caption.pipelines.speak import SpeakOptions, speak_dataset

    options = SpeakOptions(out_dir=out_dir, speaker=speaker, text_column=text_column, where=where, model=model,
                           load=LoadOptions(device=device, dtype=dtype, cache_dir=cache_dir),
                           voice=VoiceOptions(do_sample=not greedy, seed=seed), batch_size=batch_size,
                           max_piece_chars=max_piece_chars, crossfade_s=crossfade_ms / 1000, stream=stream,
                           overwrite=overwrite)

    def done(item, seconds):
        click.echo(f"{out_dir / item.wav_name}  {seconds:.1f} s", err=True)

    try:
        report = speak_dataset(dataset, options, on_item=done)
    except Exception as exc:  # one line for the user; --debug shows the traceback
        fail(ctx, exc, debug)
        return
    for line in report.errors:
        click.echo(f"skipped: {printable(line)}", err=True)
    if report.model_label:
        click.echo(f"voiced with {report.model_label}", err=True)
    click.echo(f"{len(report.written)} written, {report.skipped} already voiced, {len(report.errors)} empty; "
               f"{report.audio_s:.1f} s of audio in {report.wall_s:.1f} s; recorded in {dataset}")
