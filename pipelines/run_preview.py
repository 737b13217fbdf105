"""What a run would do, without loading a model, decoding audio or writing anything (`--dry-run`).

The same discovery, resume keys and stage plan as the run itself (pipelines/run.py), so the
preview cannot disagree with what the run then does; the hours come from the files' headers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omni_caption.schemas import PartStore, done_tasks

from .cuts import check_cut, cut_of, known_cuts
from .decode import AudioFile, DecodeError, check_decoding_available
from .discover import check_found, discover, ignored_line, path_list
from .file_hashes import hashes_file, resume_keys
from .options import RunOptions
from .output_checks import check_output
from .run import EarlierRecordings, paths_by_key, still_to_do, task_configs, wanted_hashes
from .segmenter import unreadable_reason
from .speakers import SPEAKER_TASK
from .stages import SpeakerStage, plan_stages


@dataclass
class StagePreview:
    label: str  # as the progress bar names the stage: tasks [model]
    recordings: int  # with work left in this stage
    audio_s: float  # their length by header (unreadable files count 0)
    done: int  # whose work in this stage is already stored
    tasks_left: dict[str, int] = field(default_factory=dict)  # per task of the stage: recordings left


@dataclass
class RunPreview:
    out: Path
    recordings: int
    audio_s: float
    stored_recordings: int  # of these inputs, recordings the output already holds any work for
    stages: list[StagePreview] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "path: why" for files whose header cannot be read
    unread_folders: list[str] = field(default_factory=list)  # folders that could not be listed, one line each
    ignored: str | None = None  # files of other kinds under the inputs, by extension
    kept: int = 0  # recordings of earlier runs not among these inputs, which the run keeps (not with --prune)
    replaced: list[str] = field(default_factory=list)  # earlier recordings whose path now holds other content
    damaged: list[str] = field(default_factory=list)  # parts the run would set aside, and redo the work of

    @property
    def nothing_to_do(self) -> bool:
        return all(stage.recordings == 0 for stage in self.stages)


def preview_run(inputs: str | Path | Sequence[str | Path], out: str | Path, options: RunOptions | None = None,
                listed: Sequence[str] = ()) -> RunPreview:
    """The run `run_corpus(inputs, out, options)` would do now: per stage, what is left and how long it is."""
    options = RunOptions() if options is None else options
    store = PartStore(out, rows_per_shard=options.rows_per_shard)
    check_output(store, options.overwrite)
    unread_folders: list[str] = []
    ignored: Counter = Counter()
    sources = discover(inputs, listed, unread_folders, ignored)
    check_found(sources, path_list(inputs), unread_folders, ignored)
    if sources:  # as the run checks first: a preview listing every file as unreadable would hide why
        check_decoding_available()
    configs = task_configs(options)  # also checks every model is at hand, as the run would first
    wanted = wanted_hashes(configs, options)
    plan = plan_stages(configs, options, wanted.get(SPEAKER_TASK))
    for stage in plan:  # the run's engine loads the diarizer before anything else: the dry run asks if it is there
        if isinstance(stage, SpeakerStage):
            stage.check_available()
    keys = resume_keys(sources, hashes_file(options.cache_dir))
    stored = store.stored()
    if not options.overwrite:
        check_cut(stored.states(), set(keys.values()), wanted, cut_of(options), known_cuts(store), store.out_path)
    done = {} if options.overwrite else done_tasks(stored.states(), wanted, include_errors=not options.retry_errors)
    earlier = EarlierRecordings.of(stored, paths_by_key(sources, keys), prune=options.prune or options.overwrite)
    lengths, unreadable = {}, []
    for source in sources:
        lengths[source.source_path] = 0.0
        try:  # FFmpeg's header length: a guess for some formats (declared_length.py), close enough here
            if keys[source.source_path].startswith("path:"):
                source.sha256()  # the run stops where its sha256 could not be read: say so as it will
            lengths[source.source_path] = AudioFile(source.path).duration_hint_s or 0.0
        except DecodeError as exc:  # the same words the run's error row will have
            unreadable.append(f"{source.source_path}: {exc}")
        except OSError as exc:
            unreadable.append(f"{source.source_path}: {unreadable_reason(source, exc)}")
    preview = RunPreview(out=store.out_path, recordings=len(sources), audio_s=sum(lengths.values()),
                         stored_recordings=sum(1 for s in sources if done.get(keys[s.source_path])),
                         unreadable=unreadable, unread_folders=unread_folders, ignored=ignored_line(ignored),
                         kept=len(earlier.kept), replaced=earlier.replaced_lines(),
                         damaged=[f"{why}: the run sets it aside and does its work again"
                                  for why in store.damaged_parts().values()])
    for stage in plan:
        todo = still_to_do(stage, sources, keys, done)
        preview.stages.append(StagePreview(label=stage.label, recordings=len(todo),
                                           audio_s=sum(lengths[path] for path in todo),
                                           done=len(sources) - len(todo),
                                           tasks_left={task: sum(task in left for left in todo.values())
                                                       for task in stage.hashes}))
    return preview
