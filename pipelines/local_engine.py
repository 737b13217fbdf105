"""The local engine: every stage in this process, one model loaded at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator

from .ahead import one_ahead
from .options import RunOptions
from .progress import PartialProgress
from .segmenter import Segmenter
from .stages import GroupResult, GroupWork, ModelStage, SpeakerStage, run_group, segment_group


class LocalEngine:
    """Runs the stage functions here; decode + VAD of the next group overlap the model's work on this one."""

    def __init__(self, options: RunOptions):
        # One segmenter for the whole run: it keeps each recording's segments, so later stages skip VAD.
        self.segmenter = Segmenter(options, threads=options.segmenter_threads())
        self._loaded: tuple[tuple[str, str], object, ModelStage | SpeakerStage] | None = None

    def open(self, plan: list[ModelStage | SpeakerStage]) -> None:
        """Load the diarizer up front: an unavailable pipeline stops the run before any model loads."""
        for stage in plan:
            if isinstance(stage, SpeakerStage):
                self._load(stage)

    def run_stage(self, stage: ModelStage | SpeakerStage, works: list[GroupWork],
                  on_progress: PartialProgress | None = None) -> Iterator[GroupResult]:
        """Each group's result in order; `on_progress` hears how far the group in hand has got.

        The first group is segmented while the model loads (both can take minutes); its first batch is
        tokenised once the model is there."""
        model_loaded, loaded_now = threading.Event(), []

        def prefetch(work: GroupWork) -> GroupWork:
            model_loaded.wait()
            return stage.prefetch(loaded_now[0], work) if loaded_now else work  # none: the load failed

        groups = self._segmented(works, prefetch)
        try:
            loaded_now.append(self._load(stage))
        finally:
            model_loaded.set()
            if not loaded_now:  # the load failed: stop the segmenter now rather than wait minutes for it
                groups.close()
        loaded = loaded_now[0]
        for work in groups:
            try:
                yield run_group(stage, loaded, work, on_progress)
            finally:
                work.release_audio()

    def close(self) -> None:
        if self._loaded is not None:
            _key, loaded, stage = self._loaded
            stage.release(loaded)
            self._loaded = None

    def _load(self, stage: ModelStage | SpeakerStage):
        """The stage's model, reusing the one loaded if it is the same (the summary often reuses the last)."""
        if self._loaded is not None and self._loaded[0] == stage.load_key:
            return self._loaded[1]
        self.close()
        loaded = stage.load()
        self._loaded = (stage.load_key, loaded, stage)
        return loaded

    def _segmented(self, works: list[GroupWork],
                   prefetch: Callable[[GroupWork], GroupWork]) -> Generator[GroupWork, None, None]:
        """Segment the next group, and tokenise its first batch, in a worker thread while the caller runs the
        model on this one; a run that ends early (an error, Ctrl-C) stops the segmenter instead of waiting for
        it to finish a group."""
        self.segmenter.resume()

        def ready(work: GroupWork) -> GroupWork:
            segmented = segment_group(self.segmenter, work)
            return segmented if self.segmenter.stopping else prefetch(segmented)

        return one_ahead(works, ready, "segmenter", on_leave=self.segmenter.stop)
