"""bench/gpu_owed.sh, the owed GPU calls: each command parses, and the scripts run on the GPU image's packages.

Device time is 30 minutes a session and scarce; a flag typo or a missing package there costs a machine start.
"""

import os
import shlex
import subprocess
import sys

import pytest

from tests.bench import load_bench
from tests.conftest import REPO

SCRIPT = REPO / "bench" / "gpu_owed.sh"


def dry_commands(part: int, out) -> list[list[str]]:
    done = subprocess.run(["bash", str(SCRIPT), str(part)], capture_output=True, text=True, check=True,
                          env={**os.environ, "DRY": "1", "OUT": str(out)})
    return [shlex.split(line) for line in done.stdout.splitlines() if line.strip()]


def test_each_part_runs_bench_scripts_whose_parsers_take_its_flags(tmp_path):
    throughput, voice = load_bench("gpu_throughput").build_parser(), load_bench("voice_stream").build_parser()
    scripts = []
    for part in (1, 2, 3):
        for command in dry_commands(part, tmp_path):
            assert command[:1] == ["python3"]
            script, flags = command[1], command[2:]
            parser = {"bench/gpu_throughput.py": throughput, "bench/voice_stream.py": voice}[script]
            args = parser.parse_args(flags)  # exits (SystemExit) on a flag the script does not take
            assert str(args.json).startswith(str(tmp_path))  # the figures come back from $OUT
            scripts.append((part, script))
    assert scripts == [(1, "bench/gpu_throughput.py"), (2, "bench/gpu_throughput.py"),
                       (3, "bench/voice_stream.py"), (3, "bench/gpu_throughput.py")]


def test_part_2_is_the_pipelines_slots_then_64_full_length_ones_with_the_loop_stop(tmp_path):
    (command,) = dry_commands(2, tmp_path)
    args = load_bench("gpu_throughput").build_parser().parse_args(command[2:])
    auto = {"refill_slots": 112, "slot_cache_len": 1536}
    plan = load_bench("decode_queue").queue_plan(args.queue_slots, args.queue_batches, args.loop_stop_after,
                                                  args.queue_kinds, auto)
    assert [(q.kind, q.slots, q.batches, q.loop_stop_after) for q in plan] == [("refill", 112, 4, 136),
                                                                               ("refill", 64, 4, 136)]
    int_list = load_bench("gpu_throughput").int_list
    assert int_list(args.batches, "1,64") == [] and int_list(args.engine_batches, "128") == []  # queues only
    assert int_list(None, "1,64") == [1, 64]  # an absent flag takes the default; an empty one means none
    assert args.long_captions == 0.01


def test_an_unknown_part_is_refused(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "4"], capture_output=True, text=True,
                          env={**os.environ, "DRY": "1", "OUT": str(tmp_path)})
    assert done.returncode == 2 and "usage" in done.stderr


# What the GPU image lacks (device tool's KINDS.md: its package list), and the project not installed there.
GPU_IMAGE = """
import runpy, sys
# None in sys.modules is what an absent package looks like: `import` fails, importlib.util.find_spec says None.
for name in ("torchcodec", "duckdb", "soundfile", "silero_vad", "click_default_group", "pyannote", "lhotse", "ray"):
    sys.modules[name] = None
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path = [p for p in sys.path if p != ""]
try:
    import omni_caption
    raise SystemExit("the project is still importable as installed")
except ImportError:
    pass
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("script, flags", [
    ("bench/gpu_throughput.py", ["--tiny", "--batches", "1", "--engine-batches", "", "--new-tokens", "2",
                                 "--clip-s", "4", "--queue-slots", "2", "--queue-batches", "1",
                                 "--caption-tokens", "4", "--queue-kinds", "refill"]),
    ("bench/voice_stream.py", ["--codes", "4", "--batches", "1"]),
], ids=["gpu_throughput", "voice_stream"])
def test_the_scripts_run_without_the_data_plane_packages_or_an_install(tmp_path, cache_dir, tiny_dir, script, flags):
    """On the GPU machine the checkout is a bare copy: the benches import the project from it (import_project),
    and nothing they import may need duckdb, torchcodec, soundfile or silero-vad."""
    json_flag = ["--json", str(tmp_path / "figures.json")]
    if script.endswith("gpu_throughput.py"):
        json_flag += ["--cache-dir", str(cache_dir)]
    done = subprocess.run([sys.executable, "-c", GPU_IMAGE, str(REPO / script), *flags, *json_flag],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, "OMNI_CAPTION_HOME": str(cache_dir), "OUT": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "figures.json").exists()
