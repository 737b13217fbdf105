"""A preset by its hub id, from the Hugging Face cache (HF_HOME), as users with downloaded weights run it.

The tiny model is put in the cache's own layout (models--Qwen--…/refs/main, snapshots/<commit>/) under the
Captioner's hub id; the run is a separate process, so HF_HOME is read as it is for a user.
"""

import os
import shutil
import subprocess
import sys
import time

import duckdb

from tests.conftest import EXAMPLES

CAPTIONER = "Qwen/Qwen3-Omni-30B-A3B-Captioner"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def run_offline(hf_home, tmp_path, cache_dir, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "TRANSFORMERS_CACHE")}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "omni_caption", str(EXAMPLES / "field"), "--out",
                           str(tmp_path / "out.parquet"), "--cache-dir", str(cache_dir), "--quiet", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_a_preset_loads_by_hub_id_from_the_cache_and_names_its_commit(tmp_path, tiny_dir, cache_dir):
    repo = tmp_path / "hf" / "hub" / f"models--{CAPTIONER.replace('/', '--')}"
    shutil.copytree(tiny_dir, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    result = run_offline(tmp_path / "hf", tmp_path, cache_dir, "--model", "captioner", "--max-new-tokens", "3")
    assert result.returncode == 0, result.stderr
    labels = duckdb.sql(f"SELECT DISTINCT models.caption FROM '{tmp_path / 'out.parquet'}'").fetchall()
    # transformers 5 no longer sets config._commit_hash: the commit comes from the snapshot's folder.
    assert labels == [(f"{CAPTIONER}@{COMMIT[:12]}",)]


def test_a_preset_not_in_the_cache_offline_fails_at_once_in_one_line(tmp_path, cache_dir):
    started = time.monotonic()
    result = run_offline(tmp_path / "empty-hf", tmp_path, cache_dir, "--model", "captioner")
    assert time.monotonic() - started < 60  # no download retries
    assert result.returncode == 1 and result.stderr == (
        f"Error: model 'captioner' ({CAPTIONER}) is not in the local cache (HF_HOME={tmp_path / 'empty-hf'}) and "
        "HF_HUB_OFFLINE is set\n")
    assert not (tmp_path / "out.parquet").exists()
