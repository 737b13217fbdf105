"""The segmenter keeps each recording's decoded audio in a temporary file for the stage that reads it."""

from __future__ import annotations

import pickle

import duckdb
import numpy as np
import pytest

from omni_caption.pipelines import AudioFile, RunOptions, run_corpus
from omni_caption.pipelines.discover import SourceFile
from omni_caption.pipelines.segmenter import Recording, Segmenter
from omni_caption.pipelines.span_reader import DecodedAudioCache
from omni_caption.pipelines.vad import SileroVad
from tests.conftest import EXAMPLES, make_tone


@pytest.fixture
def tone(tmp_path):
    path = make_tone(tmp_path / "tone.opus", seconds=40.0, freq=330)
    return SourceFile(path=path, source_path="tone.opus")


def test_spans_come_from_the_cache_and_equal_the_source(tone, open_caches):
    rec = Segmenter(RunOptions(device="cpu")).prepare(tone)
    assert isinstance(rec, Recording) and rec.cache is not None and open_caches() == [rec.cache]
    source = AudioFile(tone.path)
    for segment in sorted(rec.segments, key=lambda s: -s.start_s):  # any order
        np.testing.assert_array_equal(rec.read(segment), source.read(segment.start_s, segment.end_s))
    rec.release_audio()
    assert rec.cache is None and open_caches() == []


def test_a_later_stage_fills_its_cache_without_running_vad_again(tone, open_caches, monkeypatch):
    segmenter = Segmenter(RunOptions(device="cpu"))
    first = segmenter.prepare(tone)
    first.release_audio()
    calls = []
    monkeypatch.setattr(SileroVad, "analyse", lambda *args: calls.append(1))
    again = segmenter.prepare(tone)
    assert calls == [] and again.segments == first.segments
    assert again.cache is not None and again.cache.samples == pytest.approx(40.0 * 16000, abs=64)


def test_without_a_segmenter_cache_the_first_read_makes_one(tone, open_caches, monkeypatch):
    rec = Segmenter(RunOptions(device="cpu"), cache_audio=False).prepare(tone)
    assert rec.cache is None and open_caches() == []
    source_reads = []
    monkeypatch.setattr(AudioFile, "read", lambda self, *span: source_reads.append(span))
    spans = [rec.read(segment) for segment in reversed(rec.segments)]
    assert rec.cache is not None and open_caches() == [rec.cache] and source_reads == []
    for segment, span in zip(reversed(rec.segments), spans):
        assert len(span) == round((segment.end_s - segment.start_s) * 16000)
    rec.release_audio()
    assert open_caches() == []


def test_with_a_full_disk_spans_come_from_the_source(tone, open_caches, monkeypatch):
    uncached = Segmenter(RunOptions(device="cpu"), cache_audio=False).prepare(tone)
    uncached.cache_on_read = False

    def disk_full(self, block):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DecodedAudioCache, "append", disk_full)
    rec = Segmenter(RunOptions(device="cpu")).prepare(tone)
    assert isinstance(rec, Recording) and rec.cache is None and open_caches() == []
    assert rec.segments == uncached.segments
    np.testing.assert_array_equal(rec.read(rec.segments[-1]), uncached.read(uncached.segments[-1]))
    assert rec.cache is None and not rec.cache_on_read and open_caches() == []  # tried once


def test_a_recording_sent_to_another_process_leaves_its_cache_behind(tone, open_caches):
    rec = Segmenter(RunOptions(device="cpu")).prepare(tone)
    copy = pickle.loads(pickle.dumps(rec))
    assert copy.cache is None and rec.cache is not None
    np.testing.assert_array_equal(copy.read(rec.segments[0]), rec.read(rec.segments[0]))


def test_a_run_reads_every_segment_from_the_cache_and_closes_them_all(tmp_path, open_caches, cache_dir,
                                                                    tiny_dir, monkeypatch):
    source_reads = []
    real = AudioFile.read
    monkeypatch.setattr(AudioFile, "read", lambda self, *span: source_reads.append(span) or real(self, *span))
    out = tmp_path / "c.parquet"
    summary = run_corpus([EXAMPLES / "meetings"], out,
                         RunOptions(tasks=("caption", "transcript"), model="tiny-random", greedy=True,
                                    max_new_tokens=4, cache_dir=cache_dir, device="cpu"), show_progress=False)
    assert summary.errors == 0 and summary.segments >= 2
    assert duckdb.sql(f"SELECT count(*) FROM '{out}' WHERE caption IS NOT NULL").fetchone()[0] == summary.segments
    assert source_reads == []  # no span decoded from the source: all came from the caches
    assert open_caches() == []


class StageThatKeepsItsRecordings:
    """The stage interface the local engine drives, with no model: it keeps what each group handed it."""

    load_key = ("keeps", "recordings")

    def __init__(self):
        self.seen: list[Recording] = []

    def load(self):
        return None

    def rows(self, _loaded, work, _on_progress=None):
        self.seen += [p for p in work.prepared if isinstance(p, Recording)]
        assert all(rec.cache is not None for rec in self.seen[-len(work.sources):])  # readable during the group
        return []

    def prefetch(self, _loaded, work):
        return work

    def is_nonsense(self, _loaded):
        return False

    def release(self, _loaded):
        pass


def test_the_engine_releases_a_groups_caches_when_the_group_is_done(tmp_path, open_caches):
    from omni_caption.pipelines.local_engine import LocalEngine
    from omni_caption.pipelines.stages import GroupWork

    sources = [SourceFile(path=make_tone(tmp_path / f"t{i}.flac", seconds=3.0, freq=300 + 50 * i),
                          source_path=f"t{i}.flac") for i in range(3)]
    works = [GroupWork(sources=(s,), keys={s.source_path: s.sha256()}) for s in sources]
    stage = StageThatKeepsItsRecordings()
    engine = LocalEngine(RunOptions(device="cpu"))
    results = engine.run_stage(stage, works)
    next(results)
    next(results)  # the first group is done once the second is asked for
    assert stage.seen[0].cache is None and stage.seen[1].cache is not None
    list(results)
    assert [rec.cache for rec in stage.seen] == [None] * 3 and open_caches() == []
