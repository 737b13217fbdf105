"""The Ray engine: the stage functions of pipelines/stages.py, mapped over a Ray Data dataset of groups.

Each group of recordings is one row. Decode + VAD run in CPU actors
(`SegmentWorker`), a model stage in GPU actors (`StageWorker`) that load their
model once, in their constructor. Results stream back to the driver, which
writes one part per group as it arrives; workers write nothing, so a dead
worker can neither leave half a part nor write one twice. Ray Data restarts a
dead actor and retries the group it held (`RayOptions.retries`); with retries
off the run stops, its finished parts kept, and the rerun resumes.

Workers read the recordings by path: on several machines, the input folder
must be mounted at the same path on every node (and omni-caption installed).
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Iterator
from dataclasses import replace

from .discover import SourceFile
from .options import RunOptions
from .progress import PartialProgress
from .segmenter import Segmenter
from .stages import GroupResult, GroupWork, ModelStage, SpeakerStage, run_group, segment_group

RAY_MISSING = "--engine ray needs Ray, an optional extra: pip install 'omni-caption[ray]'"


class RayUnavailable(RuntimeError):
    pass


def import_ray():
    """Ray, imported only when the Ray engine is asked for: the rest of the package works without it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the Data extra: `ray` alone lacks it)
    except ImportError as exc:
        raise RayUnavailable(RAY_MISSING) from exc
    return ray


# Rows carry pickled dataclasses: Arrow cannot hold a Recording, and a bytes column is never coerced.
def _pack(value) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(data: bytes):
    return pickle.loads(data)


class SegmentWorker:
    """A CPU actor: decode + VAD + segmentation of a group, unless an earlier stage already did it."""

    def __init__(self, options: RunOptions):
        # VAD on CPU workers, by design. No decoded-audio file here: the model actor that reads the spans
        # may run on another machine, so it makes its own at the first read.
        self.segmenter = Segmenter(replace(options, device="cpu"), cache_audio=False)

    def __call__(self, batch: dict) -> dict:
        works = []
        for work, prepared in zip(batch["work"], batch["prepared"]):
            work = _unpack(work)
            if prepared:
                work = replace(work, prepared=_unpack(prepared))
            works.append(segment_group(self.segmenter, work))
        return {"work": [_pack(w) for w in works]}


class StageWorker:
    """A model actor (a GPU each, unless told otherwise): loads the stage's model once, then runs groups."""

    def __init__(self, stage: ModelStage | SpeakerStage):
        self.stage = stage
        self.loaded = stage.load()

    def __call__(self, batch: dict) -> dict:
        works = [_unpack(w) for w in batch["work"]]
        results = [_pack(run_group(self.stage, self.loaded, w)) for w in works]
        for work in works:  # the decoded-audio files its recordings made at their first read here
            work.release_audio()
        return {"result": results, "prepared": [_pack(w.prepared) for w in works]}


class RayEngine:
    """Maps each stage over the cluster; the driver (pipelines/run.py) keeps the lock and writes the parts."""

    def __init__(self, options: RunOptions):
        self.options = options
        self._ray = import_ray()
        self._started_ray = False
        # Each group's segmentation, kept as the bytes a worker sent, so a later stage skips decode + VAD.
        self._prepared: dict[tuple[str, ...], bytes] = {}

    def open(self, plan: list[ModelStage | SpeakerStage]) -> None:
        """Join the cluster (or start a local one) before the output is touched."""
        if not self._ray.is_initialized():
            try:
                # Ray's INFO lines (a cluster started, each stage's dataset finished) and Ray Data's warning that
                # the progress bars this engine turns off are off interleaved with the run's own report.
                self._ray.init(address=self.options.ray.address, log_to_driver=False, logging_level=logging.WARNING)
                logging.getLogger("ray.data").setLevel(logging.ERROR)
            except ConnectionError as exc:  # Ray's own words name its flag (--address), not ours
                raise RayUnavailable(f"--engine ray: cannot join the Ray cluster at {self._joined_address}: "
                                     f"{str(exc).splitlines()[0].split('. ')[0]}; start one (`ray start --head`), "
                                     "or leave out --ray-address and RAY_ADDRESS for a cluster of this machine"
                                     ) from exc
            self._started_ray = True
        self._check_room_for_a_model_actor()

    @property
    def _joined_address(self) -> str | None:
        """The cluster asked for by address (--ray-address, else RAY_ADDRESS); None: one of this machine."""
        return self.options.ray.address or os.environ.get("RAY_ADDRESS")

    def _check_room_for_a_model_actor(self) -> None:
        """A cluster on this machine that cannot place one model actor (no GPU, --num-gpus-per-worker 1) would
        leave the run waiting forever. A cluster joined by address is left to wait: its autoscaler may add
        the nodes."""
        if self._joined_address:
            return
        have = self._ray.cluster_resources()
        wanted = {"GPU": self.options.ray.num_gpus_per_worker, "CPU": self.options.ray.cpus_per_worker}
        short = {kind: n for kind, n in wanted.items() if n > have.get(kind, 0)}
        if short:
            what = " and ".join(f"{n:g} {kind}" for kind, n in short.items())
            held = ", ".join(f"{have.get(kind, 0):g} {kind}" for kind in short)
            raise RayUnavailable(f"--engine ray: each model actor asks for {what}, and the Ray cluster on this "
                                 f"machine has {held}: no actor could start; pass --num-gpus-per-worker 0 to run "
                                 "the models on CPU, or --ray-address to join a cluster that has the GPUs")

    def run_stage(self, stage: ModelStage | SpeakerStage, works: list[GroupWork],
                  on_progress: PartialProgress | None = None) -> Iterator[GroupResult]:
        """Each group's result as its actor finishes it. Several groups are in hand at once on the actors,
        so progress moves a group at a time: `on_progress` is not called."""
        from ray.data import ActorPoolStrategy

        ray_options = self.options.ray
        items = [{"work": _pack(_for_workers(w)), "prepared": self._prepared.get(_group_key(w.sources), b"")}
                 for w in works]
        dataset = self._ray.data.from_items(items, override_num_blocks=len(items))
        dataset.context.enable_progress_bars = False  # the run's own tqdm bar reports progress
        dataset.context.print_on_execution_start = False
        # Actor fault tolerance: a dead actor is restarted and the group it held retried, up to `retries` times.
        # Ray 2.60 has no named parameter for these and deprecates remote args for 2.64 (hence the pin).
        retries = {"max_restarts": ray_options.retries, "max_task_retries": ray_options.retries}
        with warnings.catch_warnings():  # known, and why Ray is pinned below 2.64 (pyproject.toml)
            warnings.filterwarnings("ignore", message=".*ray_remote_args_fn.* is deprecated")
            dataset = dataset.map_batches(
                SegmentWorker, fn_constructor_args=(self.options,), batch_size=1, num_cpus=1,
                compute=ActorPoolStrategy(min_size=1, max_size=ray_options.segment_workers or len(works)),
                ray_remote_args_fn=lambda: retries)
            dataset = dataset.map_batches(
                StageWorker, fn_constructor_args=(stage,), batch_size=1, num_cpus=ray_options.cpus_per_worker,
                num_gpus=ray_options.num_gpus_per_worker, compute=ActorPoolStrategy(size=ray_options.workers),
                ray_remote_args_fn=lambda: retries)
        for row in dataset.iter_rows():
            result: GroupResult = _unpack(row["result"])
            self._prepared[_group_key(result.sources)] = row["prepared"]
            yield result

    def close(self) -> None:
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False


def _group_key(sources: tuple[SourceFile, ...]) -> tuple[str, ...]:
    return tuple(s.source_path for s in sources)


def _for_workers(work: GroupWork) -> GroupWork:
    """Absolute paths: a worker process does not share the driver's working folder."""
    return replace(work, sources=tuple(SourceFile(s.path.resolve(), s.source_path) for s in work.sources))
