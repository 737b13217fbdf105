import os
from pathlib import Path

import lhotse
import numpy as np
import pytest
import soundfile as sf

from omni_caption.pipelines.probe import probe_audio
from omni_caption.schemas.export_lhotse import AudioInfo, export_lhotse, find_source
from tests.schemas.sample_dataset import write_sample


@pytest.fixture
def audio_root(tmp_path):
    """Real files for the sample dataset: a.wav (45 s, 16 kHz) and talks/b.mp3 is missing on purpose."""
    root = tmp_path / "audio"
    root.mkdir()
    t = np.arange(45 * 16_000) / 16_000
    sf.write(root / "a.wav", (0.1 * np.sin(2 * np.pi * 220 * t)).astype("float32"), 16_000)
    return root


def test_manifests_load_and_validate_with_lhotse(tmp_path, audio_root):
    dataset = write_sample(tmp_path / "d.parquet")
    result = export_lhotse(dataset, tmp_path / "manifests", [audio_root], probe_audio)
    assert result.skipped == [f"talks/b.mp3: not found under {audio_root}"]
    recordings = lhotse.load_manifest(tmp_path / "manifests" / "recordings.jsonl.gz")
    supervisions = lhotse.load_manifest(tmp_path / "manifests" / "supervisions.jsonl.gz")
    assert isinstance(recordings, lhotse.RecordingSet) and isinstance(supervisions, lhotse.SupervisionSet)
    lhotse.validate_recordings_and_supervisions(recordings, supervisions)
    (rec,) = recordings
    assert rec.id == "aa" * 8 and rec.sampling_rate == 16_000 and rec.num_samples == 45 * 16_000
    assert rec.sources[0].source == str((audio_root / "a.wav").resolve())
    sups = sorted(supervisions, key=lambda s: s.start)
    assert [(s.start, s.duration) for s in sups] == [(0.0, 15.0), (15.0, 15.0), (30.0, 15.0)]
    assert [s.text for s in sups][:2] == ["Hey, stop barking!", "Birds sing in the morning."]  # caption fallback
    assert sups[0].language == "English" and sups[0].custom["caption"].startswith("A dog barks")
    assert sups[2].custom["flags"] == ["repetition:transcript", "truncated:caption"]
    cut = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions).trim_to_supervisions()[1]
    assert cut.load_audio().shape == (1, 15 * 16_000)  # lhotse really reads the original file


def test_supervisions_are_clipped_to_the_file_and_ids_stay_unique(tmp_path, audio_root):
    from omni_caption.schemas import SegmentRow

    sha = "cc" * 32
    rows = [SegmentRow("cc" * 8, path, sha, 45.02, 0, 40.0, 45.02, transcript="end", speaker="S1")
            for path in ("a.wav", "copy.wav")]  # the same bytes under two names share a recording_id
    (audio_root / "copy.wav").write_bytes((audio_root / "a.wav").read_bytes())
    export_lhotse(write_sample(tmp_path / "d.parquet", rows), tmp_path / "m", [audio_root], probe_audio)
    recordings = lhotse.load_manifest(tmp_path / "m" / "recordings.jsonl.gz")
    supervisions = lhotse.load_manifest(tmp_path / "m" / "supervisions.jsonl.gz")
    assert sorted(r.id for r in recordings) == ["cccccccccccccccc", "cccccccccccccccc-2"]
    lhotse.validate_recordings_and_supervisions(recordings, supervisions)
    assert {s.end for s in supervisions} == {45.0} and {s.speaker for s in supervisions} == {"S1"}


def test_unreadable_file_is_reported_not_fatal(tmp_path, audio_root):
    dataset = write_sample(tmp_path / "d.parquet")

    def probe(path):
        raise RuntimeError("header\nis broken")

    result = export_lhotse(dataset, tmp_path / "m", [audio_root], probe)
    assert result.skipped[0] == "a.wav: header is broken" and result.rows == 0


def test_find_source_in_folders_and_file_roots(tmp_path, audio_root):
    assert find_source("a.wav", [tmp_path / "elsewhere", audio_root]) == (audio_root / "a.wav").resolve()
    assert find_source("a.wav", [audio_root / "a.wav"]) == (audio_root / "a.wav").resolve()
    assert find_source("b.wav", [audio_root]) is None


def test_audio_info_duration():
    assert AudioInfo(sampling_rate=8_000, num_samples=12_000, num_channels=2).duration_s == 1.5


def test_find_source_of_a_name_stored_with_escapes(tmp_path):
    raw = os.fsencode(tmp_path) + b"/r\xe9union.wav"
    open(raw, "wb").write(b"x")
    assert find_source("r\\xe9union.wav", [tmp_path]) == Path(os.fsdecode(raw)).resolve()
    literal = tmp_path / "odd\\x41.wav"  # a file truly named with a backslash escape in it: found as it is
    literal.write_bytes(b"y")
    assert find_source("odd\\x41.wav", [tmp_path]) == literal.resolve()


def test_a_recording_whose_name_is_not_utf8_exports_and_lhotse_reads_it(tmp_path, audio_root):
    from omni_caption.schemas import SegmentRow

    raw = os.fsencode(audio_root) + b"/r\xe9union.wav"
    os.rename(audio_root / "a.wav", raw)
    rows = [SegmentRow("dd" * 8, "r\\xe9union.wav", "dd" * 32, 45.0, 0, 0.0, 10.0, transcript="hello")]
    result = export_lhotse(write_sample(tmp_path / "d.parquet", rows), tmp_path / "m", [audio_root], probe_audio)
    assert result.skipped == [] and result.rows == 1
    (rec,) = lhotse.load_manifest(tmp_path / "m" / "recordings.jsonl.gz")
    assert os.fsencode(rec.sources[0].source) == os.fsencode(Path(os.fsdecode(raw)).resolve())
    assert rec.num_samples == 45 * 16_000 and rec.load_audio().shape == (1, 45 * 16_000)


def test_find_source_of_a_name_told_apart_by_its_input_folder(tmp_path):
    for day in ("day1", "day2"):
        (tmp_path / day).mkdir()
        (tmp_path / day / "mic.wav").write_bytes(day.encode())
    roots = [tmp_path / "day1", tmp_path / "day2"]
    assert find_source("day2/mic.wav", roots) == (tmp_path / "day2" / "mic.wav").resolve()
    assert find_source("day1/mic.wav", roots) == (tmp_path / "day1" / "mic.wav").resolve()
    (tmp_path / "day3").mkdir()
    (tmp_path / "day3" / "mic.wav").write_bytes(b"not an input")
    assert find_source("day3/mic.wav", roots) is None  # beside the inputs, not in them


def test_a_one_channel_recording_is_supervised_on_the_channel_the_run_heard(tmp_path, audio_root):
    """Supervised on both channels of an inverted pair, a lhotse mix cancelled the speech again."""
    from omni_caption.pipelines.probe import heard_channel
    from omni_caption.schemas import ONE_CHANNEL_SOURCE_FLAG, SegmentRow

    signal = np.random.default_rng(1).standard_normal(20 * 16_000).astype("float32") * 0.1
    sf.write(audio_root / "inverted.wav", np.stack([-0.9 * signal, signal], axis=1), 16_000)
    sf.write(audio_root / "stereo.wav", np.stack([signal, 0.5 * signal], axis=1), 16_000)
    rows = [SegmentRow("dd" * 8, "inverted.wav", "dd" * 32, 20.0, 0, 0.0, 20.0, transcript="hi",
                       flags=(ONE_CHANNEL_SOURCE_FLAG,)),
            SegmentRow("ee" * 8, "stereo.wav", "ee" * 32, 20.0, 0, 0.0, 20.0, transcript="hi")]
    export_lhotse(write_sample(tmp_path / "d.parquet", rows), tmp_path / "m", [audio_root], probe_audio,
                  heard_channel)
    supervisions = {s.recording_id: s for s in lhotse.load_manifest(tmp_path / "m" / "supervisions.jsonl.gz")}
    assert supervisions["dd" * 8].channel == 1 and supervisions["ee" * 8].channel == [0, 1]
    lhotse.validate_recordings_and_supervisions(lhotse.load_manifest(tmp_path / "m" / "recordings.jsonl.gz"),
                                                lhotse.SupervisionSet.from_segments(supervisions.values()))
