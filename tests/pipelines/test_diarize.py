"""Diarization: assign_speakers properties, the real pyannote 4 pipeline with random weights, fast failures."""

import shutil
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_caption.pipelines import TimeSpan
from omni_caption.pipelines.diarize import (DEFAULT_PIPELINE, DiarizationUnavailable, Diarizer, DiarizeOptions,
                                            SpeakerTurn, assign_speakers)
from omni_caption.pipelines.diarize_tiny import tiny_diarization_dir
from tests.conftest import ffmpeg

# --- assign_speakers: pure time arithmetic ------------------------------------------------------------

SPEAKERS = st.sampled_from(["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"])
TIMES = st.floats(min_value=0, max_value=100, allow_nan=False)


@st.composite
def turn_lists(draw, exclusive: bool = False):
    if exclusive:  # disjoint turns, as pyannote's exclusive diarization gives
        cuts = sorted(draw(st.lists(TIMES, max_size=30, unique=True)))
        return [SpeakerTurn(a, b, draw(SPEAKERS)) for a, b in zip(cuts[::2], cuts[1::2])]
    pairs = draw(st.lists(st.tuples(TIMES, TIMES, SPEAKERS), max_size=30))
    return [SpeakerTurn(min(a, b), max(a, b), s) for a, b, s in pairs if b != a]


spans = st.lists(st.tuples(TIMES, TIMES).map(lambda p: TimeSpan(min(p), max(p))), max_size=20)


def overlap_by_speaker(span, turns):
    totals = {}
    for t in turns:
        shared = min(span.end_s, t.end_s) - max(span.start_s, t.start_s)
        if shared > 0:
            totals[t.speaker] = totals.get(t.speaker, 0.0) + shared
    return totals


@settings(max_examples=300, deadline=None)
@given(spans, turn_lists())
def test_each_span_gets_a_speaker_with_the_most_overlap_or_none(spans, turns):
    result = assign_speakers(spans, turns)
    assert len(result) == len(spans)
    for span, speaker in zip(spans, result):
        totals = overlap_by_speaker(span, turns)
        if not totals:
            assert speaker is None
        else:
            assert speaker in {t.speaker for t in turns}
            assert totals[speaker] == pytest.approx(max(totals.values()), abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(turn_lists(exclusive=True), st.data())
def test_span_inside_one_turn_gets_that_speaker(turns, data):
    if not turns:
        return
    turn = data.draw(st.sampled_from(turns))
    a, b = sorted(data.draw(st.tuples(st.floats(0, 1), st.floats(0, 1))))
    span = TimeSpan(turn.start_s + a * turn.duration_s, turn.start_s + b * turn.duration_s)
    if span.duration_s <= 0:
        return
    assert assign_speakers([span], turns) == [turn.speaker]


@settings(max_examples=200, deadline=None)
@given(spans, turn_lists(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_turn_order(spans, turns, rnd):
    shuffled = list(turns)
    rnd.shuffle(shuffled)
    assert assign_speakers(spans, shuffled) == assign_speakers(spans, turns)


def test_assign_speakers_examples():
    turns = [SpeakerTurn(0.0, 2.0, "A"), SpeakerTurn(2.0, 5.0, "B"), SpeakerTurn(6.0, 6.5, "A"),
             SpeakerTurn(6.5, 6.9, "B")]
    spans = [TimeSpan(1.0, 2.5), TimeSpan(1.5, 4.0), TimeSpan(5.0, 6.0), TimeSpan(5.5, 8.0), TimeSpan(9, 10)]
    # 1.0-2.5: A 1.0 vs B 0.5; 1.5-4.0: A 0.5 vs B 2.0; 5.0-6.0 touches turns only at edges;
    # 5.5-8.0: A 0.5 vs B 0.4; nothing after 6.9.
    assert assign_speakers(spans, turns) == ["A", "B", None, "A", None]
    # A speaker's turns add up: two short B turns beat one longer A turn.
    split = [SpeakerTurn(0, 1, "B"), SpeakerTurn(1, 2.5, "A"), SpeakerTurn(2.5, 4, "B")]
    assert assign_speakers([TimeSpan(0, 4)], split) == ["B"]
    # Equal overlap: the speaker heard first wins.
    assert assign_speakers([TimeSpan(0, 2)], [SpeakerTurn(1, 2, "A"), SpeakerTurn(0, 1, "B")]) == ["B"]
    assert assign_speakers([], turns) == [] and assign_speakers(spans, []) == [None] * len(spans)


# --- the real pyannote pipeline with random weights ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    return tiny_diarization_dir(tmp_path_factory.mktemp("pyannote"))


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory):
    """~7 s of espeak-ng speech, two voices, encoded as MP3 (decoded by our FFmpeg path, starts late)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: the set-up command installs it (apt-get install -y espeak-ng)")
    folder = tmp_path_factory.mktemp("voices")
    pieces = []
    for voice, text in [("en-gb", "Good morning and welcome to the planning meeting."),
                        ("en-us+f3", "Thank you. The first item is the budget for field recordings.")]:
        wav = folder / f"{voice}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "170", "-w", str(wav), text], check=True)
        audio, rate = sf.read(wav, dtype="float32")
        pieces += [audio, np.zeros(rate // 2, dtype=np.float32)]
    sf.write(folder / "meeting.wav", np.concatenate(pieces), rate)
    ffmpeg("-i", str(folder / "meeting.wav"), "-ac", "2", "-b:a", "64k", str(folder / "meeting.mp3"))
    return folder / "meeting.mp3"


@pytest.fixture(scope="module")
def diarizer(tiny_pipeline):
    # Two speakers forced: the random embeddings would otherwise cluster into one.
    return Diarizer(tiny_pipeline, options=DiarizeOptions(num_speakers=2))


def test_random_pipeline_runs_end_to_end_from_a_local_folder(diarizer, two_voices, monkeypatch):
    from pyannote.audio.pipelines import clustering

    from omni_caption.pipelines import AudioFile

    vbx_calls = []
    real_vbx = clustering.cluster_vbx

    def spy(ahc_init, fea, phi, **kwargs):
        vbx_calls.append(fea.shape)
        return real_vbx(ahc_init, fea, phi, **kwargs)

    monkeypatch.setattr(clustering, "cluster_vbx", spy)
    audio = AudioFile(two_voices)
    samples = np.concatenate([block for _, block in audio.blocks()])
    start, end = 0.0, len(samples) / 16000
    assert 6 < end - start < 10

    turns = diarizer.diarize(two_voices)

    # The plumbing ran for real: embeddings went through the random PLDA (128-d) into VBx.
    assert vbx_calls and all(shape[1] == 128 for shape in vbx_calls)
    assert turns, "the random segmentation model is biased to hear speech, so turns must come out"
    assert all(isinstance(t.speaker, str) for t in turns)
    assert {t.speaker for t in turns} == {"SPEAKER_00", "SPEAKER_01"}  # num_speakers=2 reached pyannote
    assert all(start - 1e-6 <= t.start_s < t.end_s <= end + 1e-6 for t in turns)
    assert [t.start_s for t in turns] == sorted(t.start_s for t in turns)
    # Exclusive diarization: at most one speaker at a time.
    assert all(a.end_s <= b.start_s + 1e-6 for a, b in zip(turns, turns[1:]))

    windows = [TimeSpan(start + s, min(end, start + s + 1.0)) for s in np.arange(0, end - start, 1.0)]
    speakers = assign_speakers(windows, turns)
    assert len(speakers) == len(windows)
    assert set(speakers) - {None} <= {t.speaker for t in turns}
    assert any(s is not None for s in speakers)

    # An array is diarized the same way, in its own time (starting at 0).
    from_array = diarizer.diarize(samples)
    assert len(from_array) == len(turns)
    for a, b in zip(from_array, turns):
        assert a.speaker == b.speaker and a.start_s + start == pytest.approx(b.start_s, abs=1e-6)


def test_cached_hub_id_loads_without_network(tiny_pipeline, tmp_path, monkeypatch):
    # The hub cache layout (models--owner--name/refs/main + snapshots/<commit>/...), filled by hand.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    repo = tmp_path / "models--someone--tiny-diarization"
    commit = "0" * 40
    shutil.copytree(tiny_pipeline, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    started = time.monotonic()
    diarizer = Diarizer("someone/tiny-diarization", cache_dir=tmp_path)
    assert time.monotonic() - started < 10  # no network attempt (that alone retries for ~25 s here)
    assert type(diarizer.pipeline).__name__ == "SpeakerDiarization"


# --- failing fast and loudly ----------------------------------------------------------------------------


def _one_line_failure(spec, **kwargs) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(DiarizationUnavailable) as caught:
        Diarizer(spec, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and message
    return message, time.monotonic() - started


def test_uncached_hub_id_offline_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message, elapsed = _one_line_failure(DEFAULT_PIPELINE, token="hf_unused", cache_dir=tmp_path)
    assert elapsed < 2
    assert DEFAULT_PIPELINE in message and "HF_HUB_OFFLINE" in message and "--diarize-model" in message


def test_uncached_hub_id_without_offline_flag_fails_within_seconds(tmp_path, monkeypatch):
    # No network here: one metadata call fails fast. With network, the made-up id is not on the hub.
    # Either way pyannote's own download (five retries, ~25 s) is never reached.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    spec = "omni-caption-tests/no-such-pipeline"
    message, elapsed = _one_line_failure(spec, cache_dir=tmp_path)
    assert elapsed < 12
    assert spec in message and ("cannot be reached" in message or "no such model" in message)


def test_local_paths_that_are_not_pipelines_fail_clearly(tmp_path):
    message, _ = _one_line_failure(tmp_path)
    assert "config.yaml" in message
    message, _ = _one_line_failure(tmp_path / "missing")
    assert "no pyannote pipeline at" in message
    (tmp_path / "config.yaml").write_text("pipeline: [not, a, mapping\n")
    message, _ = _one_line_failure(tmp_path)
    assert message.startswith(f"cannot load pyannote pipeline '{tmp_path}'")



def test_diarize_stage_fills_speaker_and_resumes(tmp_path, cache_dir, tiny_dir):
    """--diarize through the main job with a random pyannote pipeline: real plumbing, meaningless speakers."""
    import shutil

    import duckdb

    from omni_caption.pipelines import RunOptions, run_corpus
    from omni_caption.pipelines.diarize_tiny import tiny_diarization_dir
    from tests.conftest import EXAMPLES

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(EXAMPLES / "meetings" / "weekly_planning.opus", folder)
    pipeline_dir = tiny_diarization_dir(cache_dir)
    base = dict(tasks=("transcript",), model="tiny-random", greedy=True, max_new_tokens=3, cache_dir=cache_dir,
                device="cpu", granularity="utterance")
    out = tmp_path / "o.parquet"
    run_corpus([folder], out, RunOptions(**base), show_progress=False)
    assert duckdb.sql(f"SELECT count(speaker) FROM '{out}'").fetchone() == (0,)
    # Turning diarization on later adds speakers without redoing the transcripts.
    summary = run_corpus([folder], out, RunOptions(**base, diarize=True, diarize_model=str(pipeline_dir)),
                         show_progress=False)
    assert summary.resumed == 0  # the speaker stage was pending
    rows = duckdb.sql(f"SELECT speaker, transcript, config_hash FROM '{out}' WHERE speech_ratio > 0.5").fetchall()
    assert rows and all(r[1] is not None and "speaker=" in r[2] and "transcript=" in r[2] for r in rows)
    assert {r[0] for r in rows} <= {"SPEAKER_00", "SPEAKER_01", "SPEAKER_02", None}
    assert any(r[0] for r in rows)


def test_unavailable_pipeline_stops_the_run_before_any_work(tmp_path, cache_dir, monkeypatch):
    from omni_caption.pipelines import RunOptions, run_corpus
    from omni_caption.pipelines.diarize import DiarizationUnavailable
    from tests.conftest import EXAMPLES

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "o.parquet"
    with pytest.raises(DiarizationUnavailable):
        run_corpus([EXAMPLES / "field"], out, RunOptions(model="tiny-random", cache_dir=cache_dir, diarize=True,
                                                         diarize_model="someone/not-cached-pipeline"),
                   show_progress=False)
    assert not out.exists() and not out.with_name(out.name + ".parts").exists()
