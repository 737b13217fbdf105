"""`speak`: voice stored texts (recording summaries, or any selected rows) with the talker.

One WAV per recording (recording-level columns such as `summary`) or per
selected row (segment columns such as `caption`). Each finished WAV is noted
in a journal in the output folder, so an interrupted run loses nothing and a
rerun skips what is done; at the end the paths and durations are written back
into the dataset through the dataset layer (atomic rewrite, under the lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..file_kinds import is_media
from ..model import LoadOptions, load_model, resolve_model
from ..model.voicing import VOICE_SAMPLE_RATE, VoiceOptions, VoicingError
from ..schemas import (SILENT_SOURCE_FLAG, DatasetInfo, PartStore, connect_readonly, format_config_hash,
                       parse_config_hash)
from ..schemas.duckdb_views import QueryRefused, check_read_only
from .discover import VOICE_JOURNAL
from .output_lock import OutputLock
from .voice_pieces import CrossfadeJoiner, split_into_pieces

TEXT_COLUMNS = ("summary", "summary_reasoning", "caption", "transcript", "answer", "reasoning")
RECORDING_LEVEL_COLUMNS = ("summary", "summary_reasoning")  # the same text on every row of a recording
JOURNAL_NAME = VOICE_JOURNAL
VOICING_VERSION = "1"  # bump when the voicing request or method changes: voiced WAVs are then redone


class SpeakError(RuntimeError):
    """Nothing can be voiced (bad selection, bad column, no dataset); one line for the user."""


@dataclass(frozen=True)
class SpeakOptions:
    out_dir: Path
    speaker: str = "ethan"
    text_column: str = "summary"
    where: str | None = None
    model: str = "instruct"
    load: LoadOptions = LoadOptions()
    voice: VoiceOptions = VoiceOptions()
    batch_size: int = 8  # pieces voiced together
    max_piece_chars: int = 250
    crossfade_s: float = 0.05
    stream: bool = False  # write each WAV as code2wav decodes it (one piece at a time)
    overwrite: bool = False

    def __post_init__(self):  # a program's "voices" or "~/voices", as RunOptions takes its cache_dir
        object.__setattr__(self, "out_dir", Path(self.out_dir).expanduser())


@dataclass(frozen=True)
class SpeakItem:
    """One WAV to write: a recording's text, or one row's."""

    recording_id: str
    segment_index: int | None  # None: the recording-level text, recorded on all its rows
    source_path: str
    text: str
    wav_name: str
    voice_hash: str


@dataclass
class SpeakReport:
    written: list[Path] = field(default_factory=list)
    skipped: int = 0  # already voiced with the same settings and text
    errors: list[str] = field(default_factory=list)  # one line each: empty texts
    audio_s: float = 0.0
    wall_s: float = 0.0
    model_label: str = ""


def _voice_hash(options: SpeakOptions, model_location: str, text: str) -> str:
    settings = {"model": model_location, "speaker": options.speaker.lower(), "column": options.text_column,
                "voicing": VOICING_VERSION, "max_piece_chars": options.max_piece_chars,
                "crossfade_s": options.crossfade_s, "voice": repr(options.voice), "text": text}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _wav_name(source_path: str, recording_id: str, segment_index: int | None) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source_path).stem)[:60] or "recording"
    suffix = "" if segment_index is None else f"-{segment_index:05d}"
    return f"{stem}.{recording_id[:8]}{suffix}.wav"


def select_items(dataset: Path, options: SpeakOptions, model_location: str) -> tuple[list[SpeakItem], list[str]]:
    """What to voice, and one error line per selected text that is empty."""
    column = options.text_column
    if column not in TEXT_COLUMNS:
        raise SpeakError(f"--text-column {column!r}: choose one of {', '.join(TEXT_COLUMNS)}")
    sql = (f"SELECT recording_id, segment_index, source_path, {column} AS text, "
           f"list_contains(coalesce(flags, []), '{SILENT_SOURCE_FLAG}') AS silent FROM segments "
           f"WHERE status = 'ok' AND ({options.where or 'TRUE'}) ORDER BY source_path, segment_index")
    con = connect_readonly(dataset)  # a dataset that cannot be read is not the predicate's fault
    try:
        check_read_only(sql)
        rows = con.sql(sql).fetchall()
    except QueryRefused as exc:
        raise SpeakError(f"--where {options.where!r}: {exc}") from exc
    except Exception as exc:  # duckdb parser/binder errors: a bad predicate
        raise SpeakError(f"--where {options.where!r}: {str(exc).splitlines()[0]}") from exc
    if not rows:
        raise SpeakError("no rows match" + (f" --where {options.where!r}" if options.where else ""))
    per_recording = column in RECORDING_LEVEL_COLUMNS
    items, errors, seen, silent_rows = [], [], set(), 0
    for recording_id, segment_index, source_path, text, silent in rows:
        if silent:  # digital silence holds no text by design: not listed row by row as empty
            silent_rows += 1
            continue
        index = None if per_recording else segment_index
        if (recording_id, index) in seen:
            continue
        seen.add((recording_id, index))
        where = source_path if index is None else f"{source_path} segment {index}"
        if not (text or "").strip():
            errors.append(f"{where}: empty {column}, nothing to voice")
            continue
        items.append(SpeakItem(recording_id, index, source_path, text.strip(),
                               _wav_name(source_path, recording_id, index),
                               _voice_hash(options, model_location, text.strip())))
    if not items and not errors:
        raise SpeakError(f"the {silent_rows} selected rows are digital silence ({SILENT_SOURCE_FLAG}): nothing to "
                         "voice")
    if not items:
        raise SpeakError(f"every selected {column} is empty: nothing to voice" + (
            " (run the summary task first)" if column == "summary" else ""))
    return items, errors


def _read_journal(out_dir: Path) -> dict[str, dict]:
    journal = out_dir / JOURNAL_NAME
    if not journal.exists():
        return {}
    entries = {}
    for line in journal.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        entries[entry["wav"]] = entry
    return entries


def _append_journal(out_dir: Path, entry: dict) -> None:
    with open(out_dir / JOURNAL_NAME, "ab+") as handle:
        end = handle.seek(0, os.SEEK_END)
        handle.seek(max(end - 1, 0))
        # After a line a crash cut short, the entry starts a line of its own (or it would be unreadable too).
        cut = end > 0 and handle.read(1) != b"\n"
        handle.write((cut * "\n" + json.dumps(entry) + "\n").encode())
        handle.flush()
        os.fsync(handle.fileno())


class _WavWriter:
    """A 16-bit 24 kHz mono WAV written as samples arrive, renamed into place when complete."""

    def __init__(self, path: Path):
        import soundfile

        self.path, self.partial = path, path.with_name(path.name + ".partial")
        self.file = soundfile.SoundFile(self.partial, "w", samplerate=VOICE_SAMPLE_RATE, channels=1,
                                        subtype="PCM_16", format="WAV")
        self.samples = 0

    def write(self, samples: np.ndarray) -> None:
        self.file.write(np.clip(samples, -1.0, 1.0))
        self.file.flush()
        self.samples += len(samples)

    def commit(self) -> float:
        self.file.close()
        os.replace(self.partial, self.path)
        return self.samples / VOICE_SAMPLE_RATE

    def abandon(self) -> None:
        self.file.close()
        self.partial.unlink(missing_ok=True)


def speak_dataset(dataset: Path, options: SpeakOptions,
                  on_item: Callable[[SpeakItem, float], None] | None = None) -> SpeakReport:
    started = time.monotonic()
    dataset = Path(dataset).expanduser()
    store = PartStore(dataset)
    if store.has_unfinished_work():
        raise SpeakError(f"{dataset} has an unfinished run ({store.parts_dir.name}): resume it first")
    if not store.final_paths():
        raise SpeakError(f"no dataset at {dataset}")
    if store.sharded and options.out_dir.resolve().is_relative_to(dataset.resolve()):
        # A sharded dataset's folder holds its shards alone: a later run there refused the folder it found them in.
        raise SpeakError(f"--out {options.out_dir} is inside the sharded dataset {dataset}/, whose folder holds its "
                         f"shards alone (a later run would refuse it); give a folder beside it, e.g. "
                         f"{dataset.resolve().name}-voices/")
    if is_media(options.out_dir) and not options.out_dir.is_dir():
        # `--out summary.wav`, meant as the one WAV: a folder of that name held it, which no player opens.
        raise SpeakError(f"--out {options.out_dir} is named as a WAV, but speak writes a folder of them (one per "
                         f"recording, or per row): give a folder, e.g. {options.out_dir.with_suffix('')}/")
    source = resolve_model(options.model, options.load.cache_dir)
    _check_speaker_early(source, options.speaker)
    items, errors = select_items(dataset, options, source.location)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    report = SpeakReport(errors=errors)
    with OutputLock(dataset):
        journal = {} if options.overwrite else _read_journal(options.out_dir)
        pending = [i for i in items if not _already_voiced(i, journal, options.out_dir)]
        report.skipped = len(items) - len(pending)
        if pending:
            omni = load_model(source, replace(options.load, voice=True))
            report.model_label = omni.model_label
            for item, seconds in _voice_items(omni, pending, options):
                _append_journal(options.out_dir, {"wav": item.wav_name, "voice_hash": item.voice_hash,
                                                  "duration_s": seconds, "model": omni.model_label})
                report.written.append(options.out_dir / item.wav_name)
                report.audio_s += seconds
                if on_item:
                    on_item(item, seconds)
        _record_in_dataset(store, items, _read_journal(options.out_dir), options)
    report.wall_s = time.monotonic() - started
    return report


def _check_speaker_early(source, speaker: str) -> None:
    """Refuse an unknown speaker before minutes of loading, where the config is at hand (local folders)."""
    config_path = Path(source.location) / "config.json"
    if not source.is_local or not config_path.exists():
        return  # checked again after loading
    config = json.loads(config_path.read_text())
    known = (config.get("talker_config") or {}).get("speaker_id")
    if known and speaker.lower() not in known:
        raise VoicingError(f"unknown speaker {speaker!r}: choose one of {', '.join(sorted(known))}")


def _already_voiced(item: SpeakItem, journal: dict[str, dict], out_dir: Path) -> bool:
    entry = journal.get(item.wav_name)
    return bool(entry) and entry["voice_hash"] == item.voice_hash and (out_dir / item.wav_name).exists()


def _voice_items(omni, items: list[SpeakItem], options: SpeakOptions):
    """Yields (item, seconds) as each WAV is complete."""
    fade = int(options.crossfade_s * VOICE_SAMPLE_RATE)
    if options.stream:
        for item in items:
            writer = _WavWriter(options.out_dir / item.wav_name)
            joiner = CrossfadeJoiner(writer.write, fade)
            try:
                for piece in split_into_pieces(item.text, options.max_piece_chars):
                    omni.family.voice_texts(omni, [piece], options.speaker, options.voice, on_audio=joiner.push)
                    joiner.end_piece()
                joiner.close()
            except BaseException:
                writer.abandon()
                raise
            yield item, writer.commit()
        return
    # Whole pieces: batch pieces of several items together, shortest with shortest to waste less padding.
    group_size = max(1, options.batch_size) * 4
    pieces_of = {i: split_into_pieces(item.text, options.max_piece_chars) for i, item in enumerate(items)}
    for start in range(0, len(items), group_size):
        group = range(start, min(start + group_size, len(items)))
        jobs = sorted(((i, k) for i in group for k in range(len(pieces_of[i]))), key=lambda j: len(pieces_of[j[0]][j[1]]))
        audio: dict[tuple[int, int], np.ndarray] = {}
        for b in range(0, len(jobs), max(1, options.batch_size)):
            batch = jobs[b:b + max(1, options.batch_size)]
            voiced = omni.family.voice_texts(omni, [pieces_of[i][k] for i, k in batch], options.speaker, options.voice)
            audio.update({job: v.waveform for job, v in zip(batch, voiced)})
        for i in group:
            writer = _WavWriter(options.out_dir / items[i].wav_name)
            joiner = CrossfadeJoiner(writer.write, fade)
            for k in range(len(pieces_of[i])):
                joiner.push(audio[(i, k)])
                joiner.end_piece()
            joiner.close()
            yield items[i], writer.commit()


def _record_in_dataset(store: PartStore, items: list[SpeakItem], journal: dict[str, dict],
                       options: SpeakOptions) -> None:
    """Paths and durations of the finished WAVs onto their rows; one atomic rewrite of the dataset."""
    import pyarrow.parquet as pq

    done = {(i.recording_id, i.segment_index): (i, journal[i.wav_name]) for i in items
            if i.wav_name in journal and journal[i.wav_name]["voice_hash"] == i.voice_hash}
    if not done:
        return
    info = DatasetInfo.from_metadata(pq.read_schema(store.final_paths()[0]).metadata)

    def recorded(rows: list) -> list:
        out = []
        for row in rows:
            hit = done.get((row.recording_id, row.segment_index)) or done.get((row.recording_id, None))
            if hit is None or row.status != "ok":
                out.append(row)
                continue
            item, entry = hit
            hashes = {**parse_config_hash(row.config_hash), "voice": item.voice_hash}
            out.append(replace(row, summary_audio_path=str((options.out_dir / item.wav_name).resolve()),
                               summary_audio_duration_s=entry["duration_s"], summary_audio_source=options.text_column,
                               models=replace(row.models, voice=entry["model"]),
                               config_hash=format_config_hash(hashes)))
        return out

    # The final file or shards (speak refuses to run beside unfinished parts), rewritten a batch at a time.
    store.finalize_chunks((recorded(rows) for rows in store.final_row_chunks()), info, audio=store.has_audio())


__all__ = ["SpeakError", "SpeakItem", "SpeakOptions", "SpeakReport", "VoicingError", "select_items",
           "speak_dataset", "TEXT_COLUMNS"]
