"""The `omni-caption` command: a thin click layer over pipelines and schemas."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from omni_caption import __version__

from .command_classes import MainJobGroup, RunCommand, SqlCommand
from .completion import complete_model, complete_task_list
from .config_file import load_config_file
from .dataset_commands import discard_stdout, fail
from .option_values import parse_aut_window, parse_batch_size, parse_device, parse_loop_stop_tokens
from .path_types import DatasetPath, UserFile, UserPath
from .run_report import counted, print_preview, print_summary
from .unused_flags import check_flags_are_used

EXIT_OK = 0  # the run finished; unreadable inputs are error rows, not a failure
EXIT_FATAL = 1  # nothing was (or could be) done: bad path, unknown model, unwritable output
EXIT_TERMINATED = 128 + signal.SIGTERM  # stopped by SIGTERM, as a shell reports a process killed by it
EXIT_INTERRUPTED = 128 + signal.SIGINT  # stopped by Ctrl-C, likewise


def _fail(ctx: click.Context, exc: BaseException) -> None:
    fail(ctx, exc, bool(ctx.find_root().params.get("debug") or ctx.params.get("debug")))


@click.group(cls=MainJobGroup, default="run", default_if_no_args=False)
@click.version_option(__version__, prog_name="omni-caption")
def cli():
    """Turn folders of long recordings into Parquet datasets of captions,
    transcripts and reasoning traces with Qwen3-Omni.

    A bare path runs the main job:

        omni-caption ./recordings --out captions.parquet

    then explore the result:

        omni-caption query captions.parquet "SELECT source_path, start_s, caption FROM segments"
    """


@cli.result_callback()
def flush_stdout(*_results, **_params) -> None:
    """A command's last output is flushed while click still handles a closed pipe as an exit of 1. Left in the
    buffer (stdout to a pipe is block-buffered), it met `| head -1`'s closed pipe only at interpreter exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()
        sys.exit(1)


@cli.command(name="run", cls=RunCommand)
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))  # str: an s3:// URL is named as given
@click.option("--out", "-o", required=True, type=UserPath(),
              help="Output .parquet file, or a folder ending in / for a sharded dataset. "
                   "An existing output is resumed: finished work is skipped.")
@click.option("--files-from", type=UserFile("rb"), default=None,
              help="A list of recordings, one path per line ('-': stdin; # comments) or NUL-separated (find "
                   "-print0), relative to the working folder; each keeps its path as listed, and a missing one "
                   "becomes an error row.")
@click.option("--tasks", default=("caption",), multiple=True, show_default=True, shell_complete=complete_task_list,
              callback=lambda c, p, v: ",".join(v),  # `--tasks caption --tasks transcript` ran transcripts alone
              help="Comma-separated, or the flag repeated: caption, transcript, reasoning, summary (one per "
                   "recording, on every row).")
@click.option("--model", default=None, shell_complete=complete_model,
              help="One model for every task: preset (captioner, thinking, instruct, qwen2.5-omni-3b, "
                   "qwen2.5-omni-7b, tiny-random, tiny-random-2.5), local folder or hub id of either family "
                   "(read from its config). Default: each task's own preset.")
@click.option("--caption-model", default=None, shell_complete=complete_model,
              help="Model for captions (default: captioner).")
@click.option("--transcript-model", default=None, shell_complete=complete_model,
              help="Model for transcripts (default: instruct).")
@click.option("--reasoning-model", default=None, shell_complete=complete_model,
              help="Model for reasoning traces (default: thinking).")
@click.option("--summary-model", default=None, shell_complete=complete_model,
              help="Model for recording summaries (default: thinking).")
@click.option("--summary-from", default="text", show_default=True, type=click.Choice(["text", "audio"]),
              help="Summarise the segments' timestamped captions/transcripts (any length), or let the model "
                   "hear the recording (<= 40 min per call; longer ones are split and reduced).")
@click.option("--question", default=None,
              help="The reasoning task's question for every segment (default: what is happening and who is "
                   "speaking, with evidence).")
@click.option("--language", default=None, help="Spoken language for transcripts: name, ISO 639 code or "
                                               "locale (pt-BR); omit to let the model say which.")
@click.option("--batch-size", default="auto", show_default=True, callback=lambda c, p, v: parse_batch_size(v),
              help="Segments decoded at once (refill slots), or 'auto': as many as the free GPU memory holds "
                   "after the model loads (8 on a CPU). Out of GPU memory, a batch is halved and retried.")
@click.option("--decoder", default="auto", show_default=True,
              type=click.Choice(["auto", "plain", "static", "refill"]),
              help="plain: transformers' generate; static: fixed batches through a static-cache engine (CUDA "
                   "graphs on a GPU), same tokens; refill: the same engine with --batch-size slots, each taking "
                   "the next segment as soon as its caption ends; auto: refill on CUDA, plain on a CPU.")
@click.option("--max-chunk-s", default=30.0, show_default=True, type=click.FloatRange(min=10.0, max=30.0),
              help="Longest segment sent to the model (the Captioner is made for <= 30 s).")
@click.option("--granularity", default="chunk", show_default=True, type=click.Choice(["chunk", "utterance"]),
              help="Rows per <= 30 s chunk cut at pauses, or per 1-8 s utterance (subtitle-like) "
                   "plus rows for long non-speech stretches.")
@click.option("--aut-window", default=None, callback=lambda c, p, v: parse_aut_window(v),
              help="Audio encoder attention window: 1..8 seconds, or 'pause' to follow the utterance windows. "
                   "Default: the model's own (8 s).")
@click.option("--embed-audio", is_flag=True,
              help="Store each segment's audio as 16 kHz FLAC bytes in `audio` (a Hugging Face Audio feature).")
@click.option("--diarize", is_flag=True,
              help="Fill `speaker` with a pyannote.audio speaker-diarization pipeline (needs its weights: "
                   "a local folder, or the hub with HF_TOKEN).")
@click.option("--diarize-model", default=None,
              help="pyannote pipeline folder or hub id (default: pyannote/speaker-diarization-community-1); "
                   "tiny-random: random weights, built locally, for the offline demo.")
@click.option("--num-speakers", default=None, type=click.IntRange(min=1), help="Known number of speakers.")
@click.option("--min-speakers", default=None, type=click.IntRange(min=1), help="Lower bound on speakers.")
@click.option("--max-speakers", default=None, type=click.IntRange(min=1), help="Upper bound on speakers.")
@click.option("--max-new-tokens", default=None, type=click.IntRange(min=1),
              help="Token cap for every task (default per task: caption 2048, transcript 1024, reasoning and "
                   "summary 4096).")
@click.option("--loop-stop-tokens", default=128, show_default=True, type=int,
              callback=lambda c, p, v: parse_loop_stop_tokens(v),
              help="Stop a decoding loop once one unit of 1-64 tokens has repeated over this many tokens (0: "
                   "let it run to the cap). The row keeps the loop's first copies and is flagged "
                   "repetition:<task> and loop_stopped:<task>.")
@click.option("--overwrite", is_flag=True, help="Start fresh: discard the existing output and work in progress.")
@click.option("--retry-errors", is_flag=True, help="Retry recordings whose last attempt ended as an error row.")
@click.option("--prune", is_flag=True,
              help="Drop from the output the recordings of earlier runs that are not among these inputs "
                   "(default: they are kept as they were).")
@click.option("--commit-every", default=None, type=click.IntRange(min=1),
              help="Recordings per committed part: at most this much work is redone after a crash. Default: at "
                   "least 16 recordings and an hour of audio, or four batches of segments if that is more (about 8.5 h "
                   "on a GPU), so that short clips still fill the model's batches.")
@click.option("--segment-threads", default=None, type=click.IntRange(min=1),
              help="Recordings decoded and VAD-segmented at once, beside the model [default: a quarter of the "
                   "CPUs, 1 to 4].")
@click.option("--greedy", is_flag=True, help="Greedy decoding for captions too (reproducible).")
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed.")
@click.option("--device", default="auto", show_default=True, callback=lambda c, p, v: parse_device(v),
              help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "bfloat16", "float16", "float32"]),
              help="auto: bfloat16 on GPU, float32 on CPU.")
@click.option("--cache-dir", default=None, type=UserPath(path_type=Path),
              help="Where tiny-random and tiny-random-2.5 are built "
                   "(default: $OMNI_CAPTION_HOME, else $XDG_CACHE_HOME/omni-caption, else ~/.cache/omni-caption).")
@click.option("--config", type=UserPath(dir_okay=False), callback=load_config_file, is_eager=True,
              expose_value=False, help="TOML file of defaults for these options (keys as option names).")
@click.option("--engine", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="local: this process; ray: a Ray cluster (needs the `ray` extra), decode and VAD on CPU "
                   "workers, each model stage on GPU actors.")
@click.option("--ray-address", default=None,
              help="With --engine ray: 'auto' joins the cluster on this machine, ray://HOST:10001 a remote one. "
                   "Default: RAY_ADDRESS, else a cluster `ray start`ed on this machine, else a new local one.")
@click.option("--num-gpus-per-worker", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="With --engine ray: GPUs per model actor (0: run the model actors on CPU).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="With --engine ray: model actors per stage, each loading the stage's model once.")
@click.option("--dry-run", is_flag=True,
              help="Say what the run would do (per stage: recordings and hours left, what is already done) "
                   "and stop: no model is loaded, no audio decoded, nothing written.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def run_command(ctx, paths, out, files_from, tasks, model, caption_model, transcript_model, reasoning_model, summary_model,
                summary_from, question, language,
                batch_size, decoder, max_chunk_s, granularity, aut_window, embed_audio, diarize, diarize_model, num_speakers, min_speakers,
                max_speakers, max_new_tokens, loop_stop_tokens, overwrite, retry_errors, prune, commit_every, segment_threads, greedy, seed, device, dtype, cache_dir, engine,
                ray_address, num_gpus_per_worker, workers, dry_run, quiet, debug):
    """Caption, transcribe, reason about and summarise every recording under PATHS into Parquet.

    Rerunning the same command resumes: finished (file, task, config) work is
    skipped, so a crash or kill loses at most one --commit-every group.

    Exit status: 0 when the run finished (files that cannot be decoded become
    rows with status='error' and are listed in the summary); 1 when nothing
    could be done or the run stopped (missing input, no recordings in the
    inputs (an unmounted share is an empty folder), unwritable --out, unknown
    or unavailable model, FFmpeg not installed, output locked by another run,
    disk full; committed work stays and the next run resumes); 2 on bad usage; 143 when stopped by
    SIGTERM (as by Ctrl-C: within seconds, committed work stays, the output
    lock is released, and the same command resumes).
    """
    from omni_caption.captioner import normalise_language
    from omni_caption.pipelines import RayOptions, RunOptions, run_corpus
    from omni_caption.pipelines.diarize import DiarizeOptions
    from omni_caption.pipelines.discover import decode_file_list
    from omni_caption.pipelines.options import parse_tasks

    try:
        if not paths and files_from is None:
            raise click.UsageError("give the recordings: folders or files as PATHS, or a list with --files-from")
        listed = decode_file_list(files_from.read()) if files_from is not None else []
        try:
            task_names = parse_tasks(tasks)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--tasks") from None
        check_flags_are_used(ctx, task_names, diarize, engine)
        if task_names == ("summary",) and summary_from == "text":
            raise click.BadParameter("a summary from text needs captions or transcripts: add caption or "
                                     "transcript to --tasks, or use --summary-from audio", param_hint="--tasks")
        overrides = {"caption": caption_model, "transcript": transcript_model, "reasoning": reasoning_model,
                     "summary": summary_model}
        options = RunOptions(
            tasks=task_names, model=model, task_models={k: v for k, v in overrides.items() if v},
            language=normalise_language(language), max_chunk_s=max_chunk_s, granularity=granularity,
            summary_from=summary_from, question=question, diarize=diarize, diarize_model=diarize_model,
            diarize_options=DiarizeOptions(num_speakers=num_speakers, min_speakers=min_speakers,
                                           max_speakers=max_speakers),
            hf_token=os.environ.get("HF_TOKEN"), embed_audio=embed_audio,
            aut_window=aut_window, batch_size=batch_size, decoder=decoder, overwrite=overwrite, retry_errors=retry_errors,
            prune=prune,
            group_recordings=commit_every, segment_threads=segment_threads,
            max_new_tokens=max_new_tokens, loop_stop_tokens=loop_stop_tokens, greedy=greedy, seed=seed, device=device, dtype=dtype,
            cache_dir=cache_dir, engine=engine,
            ray=RayOptions(address=ray_address, workers=workers, num_gpus_per_worker=num_gpus_per_worker),
        )
        if dry_run:
            from omni_caption.pipelines.run_preview import preview_run

            print_preview(preview_run(list(paths), out, options, listed))
            return
        with _sigterm_stops_the_run():
            summary = run_corpus(list(paths), out, options, show_progress=not quiet, listed=listed)
    except click.UsageError:  # BadParameter too: click prints usage and exits 2
        raise
    except (Terminated, KeyboardInterrupt) as stop:
        how, code = ("SIGTERM", EXIT_TERMINATED) if isinstance(stop, Terminated) else ("Ctrl-C", EXIT_INTERRUPTED)
        where = "" if dry_run else (f"; the committed work stays in {Path(out)}.parts/ and the same command "
                                    f"resumes it")
        click.echo(f"\nError: stopped by {how}{where}", err=True)
        ctx.exit(code)
    except Exception as exc:  # one line for the user; --debug shows the traceback
        _fail(ctx, exc)
        return
    print_summary(summary, out)


class Terminated(BaseException):
    """SIGTERM during a run. A BaseException, as KeyboardInterrupt is: no `except Exception` on the way up
    mistakes it for a bad file, and every `finally` runs (the output lock is released)."""


@contextmanager
def _sigterm_stops_the_run():
    """A scheduler's SIGTERM (SLURM before a preemption, `docker stop`, `timeout`) stops the run as Ctrl-C
    does, within seconds: the lock is released, so a job requeued on another host can take the output."""
    def stop(_signum, _frame):
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (an embedding program): leave its signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command(name="query", cls=SqlCommand)
@click.argument("dataset", type=DatasetPath())
@click.argument("sql")
@click.option("--format", "fmt", default=None, type=click.Choice(["table", "csv", "json", "parquet"]),
              help="Default: table, or with --out the kind its name ends in (.parquet, .csv, .json/.jsonl).")
# `--out`, as `run`, `export` and `speak` name it (`--output` was the only name, and `--out x.parquet` failed).
@click.option("--out", "-o", "--output", "output", type=UserPath(dir_okay=False),  # str: a trailing / is kept
              help="File to write the rows to ('-': stdout), as csv, json (lines) or parquet; needed with "
                   "--format parquet.")
@click.option("--max-rows", default=100, show_default=True, type=click.IntRange(min=1),
              help="Rows shown in table format (csv and json print all).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def query_command(ctx, dataset, sql, fmt, output, max_rows, debug):
    """Run read-only SQL over DATASET with DuckDB.

    Views: `segments` (one row per segment) and `recordings` (one per file).

        omni-caption query captions.parquet "SELECT count(*) FROM segments"

    SQL '-' reads it from stdin: `query captions.parquet - < report.sql`.
    """
    import duckdb

    from omni_caption.schemas import run_query

    from .query_output import query_output_format, table_text, write_rows

    if sql == "-":
        sql = sys.stdin.read()
    fmt = query_output_format(fmt, output)
    if output is not None:
        output = Path("/dev/stdout" if output == "-" else output)
    try:
        relation = run_query(dataset, sql)
        if output is not None:
            from omni_caption.schemas.export_formats import written_through

            from .dataset_commands import write_query_file

            rows = write_query_file(relation, fmt, output, dataset)
            click.echo(f"Wrote {counted(rows, 'row')} to {output}", err=written_through(output))
        elif fmt == "table":
            click.echo(table_text(relation, max_rows))
        else:
            write_rows(relation, fmt, sys.stdout)
    except (duckdb.Error, ValueError, FileNotFoundError) as exc:
        _fail(ctx, exc)


from .dataset_commands import export_command, info_command, search_command  # noqa: E402
from .speak_command import speak_command  # noqa: E402

for _command in (search_command, info_command, export_command, speak_command):
    cli.add_command(_command)
