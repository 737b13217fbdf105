"""Several recordings segmented at once: the same results as one at a time, and no VAD model shared."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from omni_caption.pipelines import RunOptions, options as options_module
from omni_caption.pipelines.discover import SourceFile
from omni_caption.pipelines.segmenter import Recording, Segmenter
from omni_caption.pipelines.vad import SileroVad
from omni_caption.schemas import SegmentRow
from tests.conftest import EXAMPLES

FILES = ["meetings/weekly_planning.opus", "not_really_audio.mp3", "field/river_morning.flac",
         "podcast_episode.mp3", "field/voice_memo.m4a"]


def _items():
    return [(SourceFile(EXAMPLES / name, name), None) for name in FILES]


def _summary(prepared):
    if isinstance(prepared, SegmentRow):
        return ("error", prepared.source_path, prepared.error)
    return ("ok", prepared.source.source_path, prepared.sha256, prepared.duration_s, prepared.segments)


def test_in_threads_the_results_and_their_order_equal_one_at_a_time():
    serial = Segmenter(RunOptions(device="cpu"), threads=1).prepare_all(_items())
    threaded = Segmenter(RunOptions(device="cpu"), threads=3).prepare_all(_items())
    assert [_summary(p) for p in threaded] == [_summary(p) for p in serial]
    assert [type(p) for p in threaded] == [Recording, SegmentRow, Recording, Recording, Recording]
    for one, other in zip(serial, threaded):
        if isinstance(one, Recording):
            segment = one.segments[-1]
            np.testing.assert_array_equal(other.read(segment), one.read(segment))
            one.release_audio()
            other.release_audio()


def test_threads_really_overlap_and_never_share_a_vad_model(monkeypatch):
    real = SileroVad.analyse
    busy: set[int] = set()
    shared: list[int] = []
    both_inside = threading.Barrier(2, timeout=60)  # breaks (and fails the run) unless two analyses overlap
    calls = []
    lock = threading.Lock()

    def watched(self, blocks):
        with lock:
            if id(self) in busy:
                shared.append(id(self))
            busy.add(id(self))
            calls.append(id(self))
            first_two = len(calls) <= 2
        try:
            if first_two:
                both_inside.wait()
            return real(self, blocks)
        finally:
            with lock:
                busy.discard(id(self))

    monkeypatch.setattr(SileroVad, "analyse", watched)
    segmenter = Segmenter(RunOptions(device="cpu"), threads=2)
    segmenter.warm_up()
    assert segmenter.vads_loaded == 2
    prepared = segmenter.prepare_all(_items())
    assert shared == [] and len(set(calls)) == 2 and segmenter.vads_loaded == 2  # warm models reused, none added
    assert sum(isinstance(p, Recording) for p in prepared) == 4
    for p in prepared:
        if isinstance(p, Recording):
            p.release_audio()


def test_a_recording_segmented_once_is_not_analysed_again_in_threads(monkeypatch):
    segmenter = Segmenter(RunOptions(device="cpu"), threads=2)
    first = segmenter.prepare_all(_items())
    calls = []
    monkeypatch.setattr(SileroVad, "analyse", lambda *args: calls.append(1))
    again = segmenter.prepare_all(_items())
    assert calls == [] and [_summary(p) for p in again] == [_summary(p) for p in first]
    for p in first + again:
        if isinstance(p, Recording):
            p.release_audio()


@pytest.mark.parametrize("cpus,asked,threads", [(1, None, 1), (2, None, 1), (8, None, 2), (16, None, 4),
                                                (96, None, 4), (2, 3, 3)])
def test_segmenter_threads_default_to_a_quarter_of_the_cpus(monkeypatch, cpus, asked, threads):
    monkeypatch.setattr(options_module, "_usable_cpus", lambda: cpus)
    assert RunOptions(segment_threads=asked).segmenter_threads() == threads


def test_a_stopped_segmenter_drops_its_recording_and_closes_its_cache(open_caches):
    from omni_caption.pipelines.segmenter import SegmentationStopped

    segmenter = Segmenter(RunOptions(device="cpu"))
    segmenter.stop()
    with pytest.raises(SegmentationStopped):
        segmenter.prepare(*_items()[0])
    assert open_caches() == []
    segmenter.resume()
    again = segmenter.prepare(*_items()[0])
    assert isinstance(again, Recording) and again.segments and len(open_caches()) == 1
    again.release_audio()


def test_a_run_that_fails_stops_the_group_being_segmented_instead_of_waiting_for_it(monkeypatch, open_caches):
    """The model fails on group 1 while group 2, endless here, is being segmented: the error must
    reach the caller after a few blocks of group 2, not after all of them."""
    import time

    from omni_caption.pipelines import AudioFile
    from omni_caption.pipelines.local_engine import LocalEngine
    from omni_caption.pipelines.stages import GroupWork

    real_blocks = AudioFile.blocks
    served = []

    def endless_for_group_two(self, *args, **kwargs):
        if "podcast" not in self.path.name:
            yield from real_blocks(self, *args, **kwargs)
            return
        for i in range(3000):  # 30 s of blocks if nothing stops it
            served.append(i)
            time.sleep(0.01)
            yield float(i), np.zeros(512, dtype=np.float32)

    class FailingStage:  # a stand-in for a model stage: fails on the first group it gets
        load_key = ("test", "failing")

        def load(self):
            return None

        def release(self, loaded):
            pass

        def prefetch(self, loaded, work):
            return work

        def rows(self, loaded, work, on_progress=None):
            raise RuntimeError("the model failed")

    monkeypatch.setattr(AudioFile, "blocks", endless_for_group_two)
    engine = LocalEngine(RunOptions(device="cpu", segment_threads=1))
    works = [GroupWork(sources=(source,), keys={source.source_path: f"path:{source.source_path}"})
             for source, _ in (_items()[0], _items()[3])]
    with pytest.raises(RuntimeError, match="the model failed"):
        for _ in engine.run_stage(FailingStage(), works):
            pass
    engine.close()
    assert 0 < len(served) < 1000 and open_caches() == []


class _StageLoadingSlowly:
    """A stand-in for a model stage whose model takes a while to load."""

    load_key = ("test", "slow")

    def __init__(self, load):
        self._load = load

    def load(self):
        return self._load()

    def release(self, loaded):
        pass

    def prefetch(self, loaded, work):
        assert loaded == "model"  # the first batch is tokenised with the model, so only once it is there
        return work

    def rows(self, loaded, work, on_progress=None):
        return []

    def is_nonsense(self, loaded):
        return False


def test_the_first_group_is_segmented_while_the_model_loads(monkeypatch, open_caches):
    from omni_caption.pipelines.local_engine import LocalEngine
    from omni_caption.pipelines.stages import GroupWork

    segmenting = threading.Event()
    real_prepare = Segmenter.prepare
    monkeypatch.setattr(Segmenter, "prepare", lambda self, *a: segmenting.set() or real_prepare(self, *a))

    def load():
        assert segmenting.wait(timeout=60), "the first group was not segmented during the model's load"
        return "model"

    engine = LocalEngine(RunOptions(device="cpu", segment_threads=1))
    works = [GroupWork(sources=(source,), keys={source.source_path: f"path:{source.source_path}"})
             for source, _ in (_items()[0], _items()[2])]
    results = list(engine.run_stage(_StageLoadingSlowly(load), works))
    assert [r.sources for r in results] == [w.sources for w in works]
    engine.close()
    assert open_caches() == []


def test_a_model_that_fails_to_load_stops_the_first_groups_segmenting(monkeypatch, open_caches):
    import time

    from omni_caption.pipelines import AudioFile
    from omni_caption.pipelines.local_engine import LocalEngine
    from omni_caption.pipelines.stages import GroupWork

    served = []

    def endless(self, *args, **kwargs):
        for i in range(3000):  # 30 s of blocks if nothing stops it
            served.append(i)
            time.sleep(0.01)
            yield float(i), np.zeros(512, dtype=np.float32)

    def load():
        deadline = time.monotonic() + 60
        while not served:  # the segmenter is at work on the first group
            assert time.monotonic() < deadline, "the first group was not segmented during the model's load"
            time.sleep(0.01)
        raise OSError("no such model")

    monkeypatch.setattr(AudioFile, "blocks", endless)
    engine = LocalEngine(RunOptions(device="cpu", segment_threads=1))
    source = _items()[0][0]
    works = [GroupWork(sources=(source,), keys={source.source_path: f"path:{source.source_path}"})]
    with pytest.raises(OSError, match="no such model"):
        list(engine.run_stage(_StageLoadingSlowly(load), works))
    assert 0 < len(served) < 1000 and open_caches() == []
