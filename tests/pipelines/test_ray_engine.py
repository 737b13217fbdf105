"""The Ray engine on a local 2-CPU cluster with tiny-random: same rows as the local engine, killed workers."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from omni_caption.cli.main import cli
from omni_caption.pipelines import RayOptions, RunOptions, discover, run_corpus
from omni_caption.schemas import PartStore
from tests.conftest import EXAMPLES, finishes_within
from tests.pipelines.run_helpers import rows_of, tiny_run_options

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False)
    yield ray
    ray.shutdown()


def options(cache_dir, **extra) -> RunOptions:
    return tiny_run_options(cache_dir, **{"group_recordings": 2, **extra})


def on_ray(opts: RunOptions, retries: int = 3) -> RunOptions:
    return replace(opts, engine="ray", ray=RayOptions(num_gpus_per_worker=0, retries=retries))


def test_same_rows_as_the_local_engine_and_resume(tmp_path, cache_dir, tiny_dir, ray_cluster):
    both = options(cache_dir, tasks=("caption", "summary"))  # two stages: the summary reads the captions
    local = run_corpus([EXAMPLES], tmp_path / "local.parquet", both, show_progress=False)
    out = tmp_path / "ray.parquet"
    args = [str(EXAMPLES), "--out", str(out), "--tasks", "caption,summary", "--model", "tiny-random", "--greedy",
            "--max-new-tokens", "6", "--commit-every", "2", "--device", "cpu", "--cache-dir", str(cache_dir),
            "--engine", "ray", "--num-gpus-per-worker", "0", "--workers", "1", "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "deprecated" not in result.output  # Ray's warning about remote args, the known reason for its pin
    assert rows_of(out) == rows_of(tmp_path / "local.parquet")
    assert f"ok                {local.ok}" in result.output and f"errors            {local.errors}" in result.output
    local_rerun = run_corpus([EXAMPLES], tmp_path / "local.parquet", both, show_progress=False)
    rerun = CliRunner().invoke(cli, args)
    assert rerun.exit_code == 0 and f"resumed: {local_rerun.resumed} recordings" in rerun.output
    assert local_rerun.resumed >= 4
    assert rows_of(out) == rows_of(tmp_path / "local.parquet")


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory, cache_dir, tiny_dir):
    """Three copies of the examples (15 files, 8 groups of 2) and the local engine's result for them.

    Copies have the same bytes, so resume counts them by content: a committed
    file's copies are done too.
    """
    folder = tmp_path_factory.mktemp("ray-corpus")
    for i in range(3):
        shutil.copytree(EXAMPLES, folder / f"copy{i}", ignore=shutil.ignore_patterns("*.txt"))
    reference = folder.parent / f"{folder.name}-reference.parquet"
    run_corpus([folder], reference, options(cache_dir), show_progress=False)
    return folder, rows_of(reference)


def _stage_worker_pids() -> list[int]:
    """Ray's model actor processes started by this test session (ray::...StageWorker titles)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"StageWorker" in title and _descends_from(int(entry.name), os.getpid()):
            found.append(int(entry.name))
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def _kill_a_stage_worker_after_first_part(out: Path, killed: list[int]) -> threading.Thread:
    store = PartStore(out)

    def watch():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not store.part_paths():
            time.sleep(0.02)
        for pid in _stage_worker_pids()[:1]:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _record_parts(monkeypatch) -> list[dict]:
    manifests = []
    real = PartStore.write_part

    def recording(self, table, manifest=None):
        manifests.append(manifest)
        return real(self, table, manifest)

    monkeypatch.setattr(PartStore, "write_part", recording)
    return manifests


def test_killed_worker_is_retried_with_nothing_lost_or_doubled(tmp_path, cache_dir, big_corpus, ray_cluster,
                                                              monkeypatch):
    folder, reference = big_corpus
    out = tmp_path / "out.parquet"
    manifests = _record_parts(monkeypatch)
    killed: list[int] = []
    watcher = _kill_a_stage_worker_after_first_part(out, killed)
    summary = run_corpus([folder], out, on_ray(options(cache_dir)), show_progress=False)
    watcher.join()
    assert killed, "no model actor was found to kill"
    assert rows_of(out) == reference
    written = [r["source_path"] for m in manifests for r in m["recordings"]]
    assert sorted(written) == sorted(set(written)) and len(written) == summary.recordings == 15


def test_killed_worker_without_retries_ends_resumable(tmp_path, cache_dir, big_corpus, ray_cluster, monkeypatch):
    folder, reference = big_corpus
    out = tmp_path / "out.parquet"
    killed: list[int] = []
    watcher = _kill_a_stage_worker_after_first_part(out, killed)
    with pytest.raises(Exception) as failure:
        run_corpus([folder], out, on_ray(options(cache_dir), retries=0), show_progress=False)
    watcher.join()
    assert killed and not out.exists(), failure.value
    assert not out.with_name(out.name + ".lock").exists()
    committed = {r["source_sha256"] for p in PartStore(out).part_paths() for r in rows_of(p)}
    assert committed
    keys = {s.source_path: s.sha256() for s in discover([folder])}
    manifests = _record_parts(monkeypatch)
    summary = run_corpus([folder], out, on_ray(options(cache_dir)), show_progress=False)
    assert summary.resumed == sum(1 for key in keys.values() if key in committed) > 0
    redone = [r["source_path"] for m in manifests for r in m["recordings"]]
    assert len(redone) == len(set(redone)) == 15 - summary.resumed
    assert not {keys[path] for path in redone} & committed
    assert rows_of(out) == reference


def test_a_local_cluster_without_the_gpus_a_model_actor_asks_for_fails_at_once(tmp_path, cache_dir, ray_cluster,
                                                                             monkeypatch):
    """Before: the model actor waited for a GPU this machine does not have, and the run hung for ever."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result = finishes_within(90, lambda: CliRunner().invoke(cli, [
        str(EXAMPLES), "--out", str(tmp_path / "o.parquet"), "--model", "tiny-random", "--cache-dir", str(cache_dir),
        "--engine", "ray", "--quiet"]), hangs="the run still waits for a GPU after 90 s")
    assert result.exit_code == 1 and result.output == (
        "Error: --engine ray: each model actor asks for 1 GPU, and the Ray cluster on this machine has 0 GPU: no "
        "actor could start; pass --num-gpus-per-worker 0 to run the models on CPU, or --ray-address to join a "
        "cluster that has the GPUs\n")
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "o.parquet.parts").exists()


def test_no_cluster_at_the_address_is_one_line_naming_our_flags(tmp_path, cache_dir, monkeypatch):
    import ray

    def no_cluster(address=None, **kwargs):  # what ray.init says with no cluster at `address` (Ray 2.60)
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to by "
                              "setting `--address` flag or `RAY_ADDRESS` environment variable.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    result = CliRunner().invoke(cli, [str(EXAMPLES), "--out", str(tmp_path / "o.parquet"), "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "--engine", "ray", "--ray-address", "auto"])
    assert result.exit_code == 1 and result.output == (
        "Error: --engine ray: cannot join the Ray cluster at auto: Could not find any running Ray instance; start "
        "one (`ray start --head`), or leave out --ray-address and RAY_ADDRESS for a cluster of this machine\n")


def test_without_ray_installed_the_cli_says_so_in_one_line(tmp_path, cache_dir, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    out = tmp_path / "o.parquet"
    result = CliRunner().invoke(cli, [str(EXAMPLES / "field"), "--out", str(out), "--model", "tiny-random",
                                      "--cache-dir", str(cache_dir), "--engine", "ray", "--quiet"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --engine ray needs Ray, an optional extra: pip install 'omni-caption[ray]'"
    assert not out.exists() and not out.with_name(out.name + ".parts").exists()


def test_a_cluster_the_engine_starts_keeps_rays_info_lines_out_of_the_report(cache_dir, monkeypatch):
    """A --quiet run printed seven lines of Ray's: a cluster started, each stage's dataset finished, progress
    bars off, a deprecation. Measured by hand: two are left, Ray's token notice and a core worker's line."""
    import logging

    import ray

    from omni_caption.pipelines.ray_engine import RayEngine

    started = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: started.append(kwargs))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    ray_data = logging.getLogger("ray.data")
    monkeypatch.setattr(ray_data, "level", ray_data.level)  # restored after the test
    RayEngine(on_ray(options(cache_dir))).open([])
    assert started == [{"address": None, "log_to_driver": False, "logging_level": logging.WARNING}]
    assert ray_data.level == logging.ERROR
