"""--dry-run: what a run would do, from the same plan the run uses, without doing any of it."""

from __future__ import annotations

import pytest

from omni_caption.pipelines import RunOptions, run_corpus
from omni_caption.pipelines.run_preview import preview_run
from tests.conftest import make_tone
from tests.pipelines.run_helpers import tiny_run_options


def options(cache_dir, **extra) -> RunOptions:
    return tiny_run_options(cache_dir, **{"max_new_tokens": 3, **extra})


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    make_tone(folder / "a.flac", seconds=6.0)
    make_tone(folder / "b.mp3", seconds=9.0, freq=550)
    (folder / "broken.wav").write_bytes(b"RIFF not really")
    (folder / "gone.wav").symlink_to(folder / "elsewhere.wav")
    return folder


def test_a_fresh_output_has_everything_to_do_and_writes_nothing(folder, tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "o.parquet"
    preview = preview_run([folder], out, options(cache_dir, tasks=("caption", "transcript", "summary")))
    assert (preview.recordings, preview.stored_recordings) == (4, 0)
    assert preview.audio_s == pytest.approx(15.0, abs=0.2)
    assert [(s.label, s.recordings, s.done) for s in preview.stages] == [
        ("caption+transcript [tiny-random]", 4, 0), ("summary [tiny-random]", 4, 0)]
    assert preview.stages[0].tasks_left == {"caption": 4, "transcript": 4}
    assert [line.split(":")[0] for line in preview.unreadable] == ["broken.wav", "gone.wav"]
    assert "broken symbolic link" in preview.unreadable[1]
    assert not out.exists() and not any(tmp_path.glob("o.parquet*"))


def test_the_preview_agrees_with_what_the_run_then_does(folder, tmp_path, cache_dir, tiny_dir):
    out = tmp_path / "o.parquet"
    run_corpus([folder], out, options(cache_dir), show_progress=False)  # captions only, errors stored too
    both = options(cache_dir, tasks=("caption", "transcript"))
    preview = preview_run([folder], out, both)
    assert preview.stored_recordings == 4
    (stage,) = preview.stages
    assert (stage.recordings, stage.tasks_left) == (4, {"caption": 0, "transcript": 4})
    assert stage.audio_s == pytest.approx(15.0, abs=0.2)
    run_corpus([folder], out, both, show_progress=False)
    after = preview_run([folder], out, both)
    assert after.nothing_to_do and after.stages[0].done == 4
    # The stored error rows count as done, as the run treats them, unless errors are to be retried.
    retry = preview_run([folder], out, options(cache_dir, tasks=("caption", "transcript"), retry_errors=True))
    assert retry.stages[0].recordings == 2 and retry.stages[0].audio_s == 0.0
    assert preview_run([folder], out, options(cache_dir, overwrite=True)).stages[0].recordings == 4


def test_an_unwritable_output_or_a_missing_model_stops_the_preview_as_it_would_the_run(folder, tmp_path, cache_dir):
    from omni_caption.model import UnknownModelError
    from omni_caption.pipelines.output_checks import OutputPathError

    with pytest.raises(OutputPathError):
        preview_run([folder], tmp_path / "missing" / "o.parquet", options(cache_dir))
    with pytest.raises(UnknownModelError):
        preview_run([folder], tmp_path / "o.parquet", options(cache_dir, model="./no/such/folder"))


def test_a_diarization_pipeline_that_is_not_at_hand_stops_the_preview_as_it_stops_the_run(folder, tmp_path,
                                                                                          cache_dir, monkeypatch):
    """The dry run said 'speakers [...] to do' for a gated pipeline neither cached nor reachable; the run then
    stopped at once on it."""
    import huggingface_hub

    from omni_caption.pipelines.diarize import DiarizationUnavailable

    with pytest.raises(DiarizationUnavailable, match="no pyannote pipeline at .*nowhere: no such folder"):
        preview_run([folder], tmp_path / "o.parquet", options(cache_dir, diarize=True,
                                                              diarize_model=str(tmp_path / "nowhere")))
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)  # not cached here
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DiarizationUnavailable, match="'pyannote/speaker-diarization-community-1': not in the "
                                                     "local cache and HF_HUB_OFFLINE is set"):
        preview_run([folder], tmp_path / "o.parquet", options(cache_dir, diarize=True))
    assert preview_run([folder], tmp_path / "o.parquet", options(cache_dir, diarize=True,
                                                                 diarize_model="tiny-random")).stages


@pytest.mark.parametrize("plan", [preview_run, run_corpus])
def test_a_gpu_this_machine_lacks_stops_the_run_before_any_input_is_read(folder, tmp_path, cache_dir, tiny_dir,
                                                                         monkeypatch, plan):
    """The run found it only when the model loaded, after hashing every input (minutes for an archive)."""
    import torch

    from omni_caption.model import ModelLoadError
    from omni_caption.pipelines import run as run_module
    from omni_caption.pipelines import run_preview

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for module in (run_module, run_preview):
        monkeypatch.setattr(module, "resume_keys", lambda *a, **k: pytest.fail("inputs read before the check"))
    with pytest.raises(ModelLoadError, match="--device cuda:0: no CUDA GPU is visible to torch"):
        plan([folder], tmp_path / "o.parquet", options(cache_dir, device="cuda:0"))
    assert not any(tmp_path.glob("o.parquet*"))


def test_ray_workers_pick_their_own_gpu_so_the_driver_checks_only_the_name(folder, tmp_path, cache_dir, tiny_dir,
                                                                           monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    preview = preview_run([folder], tmp_path / "o.parquet", options(cache_dir, device="cuda", engine="ray"))
    assert preview.recordings == 4
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N, not 'gpu'"):
        options(cache_dir, device="gpu", engine="ray")


@pytest.mark.parametrize("plan", [preview_run, run_corpus])
def test_a_preset_neither_cached_nor_reachable_stops_the_run_before_any_input_is_read(folder, tmp_path, cache_dir,
                                                                                       tiny_dir, monkeypatch, plan):
    """A hub id was checked at once, but a preset (`--model instruct`) only when it loaded, after every input
    was hashed and the first group decoded; and the dry run said all was well."""
    from omni_caption.model import ModelLoadError
    from omni_caption.pipelines import run as run_module
    from omni_caption.pipelines import run_preview

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)  # not cached here
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for module in (run_module, run_preview):
        monkeypatch.setattr(module, "resume_keys", lambda *a, **k: pytest.fail("inputs read before the check"))
    with pytest.raises(ModelLoadError, match=r"model 'instruct' \(Qwen/Qwen3-Omni-30B-A3B-Instruct\) is not in the "
                                             "local cache .* and HF_HUB_OFFLINE is set"):
        plan([folder], tmp_path / "o.parquet", options(cache_dir, tasks=("caption", "transcript"),
                                                       task_models={"transcript": "instruct"}))


def test_a_summary_is_done_again_where_the_run_does_again_the_text_it_summarises(folder, tmp_path, cache_dir,
                                                                                tiny_dir, monkeypatch):
    """Captions from a new model, summary kept: it summarised the old captions' words."""
    from omni_caption.pipelines import stages

    out = tmp_path / "o.parquet"
    summarised = []
    real = stages.summary_rows
    monkeypatch.setattr(stages, "summary_rows", lambda omni, config, recordings, *rest: summarised.append(
        sorted(r.source.source_path for r in recordings)) or real(omni, config, recordings, *rest))
    run_corpus([folder], out, options(cache_dir, tasks=("caption", "summary")), show_progress=False)
    assert sum(summarised, []) == ["a.flac", "b.mp3"]
    summarised.clear()
    new_captions = options(cache_dir, tasks=("caption", "summary"), task_models={"caption": str(tiny_dir)})
    caption, summary = preview_run([folder], out, new_captions).stages
    assert (caption.recordings, summary.recordings) == (4, 4)
    run_corpus([folder], out, new_captions, show_progress=False)
    assert sum(summarised, []) == ["a.flac", "b.mp3"]
    # Nothing redone, nothing summarised again; a summary from audio reads no captions.
    assert preview_run([folder], out, new_captions).nothing_to_do
    from_audio = options(cache_dir, tasks=("caption", "summary"), summary_from="audio")
    run_corpus([folder], out, from_audio, show_progress=False)
    assert preview_run([folder], out, replace_model(from_audio, "caption", str(tiny_dir))).stages[1].recordings == 0


def replace_model(options_, task, model):
    from dataclasses import replace

    return replace(options_, task_models={**options_.task_models, task: model})


def test_options_left_out_are_the_cli_s_defaults(folder, tmp_path, monkeypatch):
    """`run_corpus("recordings", "out.parquet")` needed a RunOptions, where the CLI needs no flag but --out."""
    from omni_caption.model import ModelLoadError

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing cached, no hub: the default model is named, not loaded
    for plan in (preview_run, run_corpus):
        with pytest.raises(ModelLoadError, match=r"^model 'captioner' \(Qwen/Qwen3-Omni-30B-A3B-Captioner\) is not in "):
            plan(folder, tmp_path / "o.parquet")
    assert not any(tmp_path.glob("o.parquet*"))
