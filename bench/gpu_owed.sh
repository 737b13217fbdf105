#!/usr/bin/env bash
# The GPU figures issues #6 and #7 still owe, in three device calls, each well inside the device's 10 minutes
# a call (30 minutes a session). From this machine, one after the other so the machine stays warm:
#
#   run(carry=[".whl"], timeout_s=600, command="bash bench/gpu_owed.sh 1")
#   run(carry=[".whl"], timeout_s=600, command="bash bench/gpu_owed.sh 2")
#   run(carry=[".whl"], timeout_s=600, command="bash bench/gpu_owed.sh 3")
#
# `.whl` holds transformers 5.23 (the GPU image has 5.17; bench/RESULTS.md says how to fetch it); each call
# installs it into /tmp/site. Logs and JSON land in $OUT, rewritten after every run, so a call cut short keeps
# what finished. DRY=1 prints the commands instead of running them (tests/bench check them).
#
#   1  engine vs plain generate at full 30B-A3B shapes: batch 1, 64, 128, a 64-slot queue, a profile (#7)
#   2  the pipeline's own refill slots (--batch-size auto: the figure to hold against 300x) and 64 full-length
#      ones, 1 % looping captions stopped as the pipeline stops them, in one process (one 30B build) (#7)
#   3  voice-back at the released talker's shapes: first-chunk latency and RTF (#6); then the pipeline's
#      slots again with the loops left to run to the cap, what the loop stop saves (#7)
#
# Not here: bench/segmentation.py and bench/data_plane.py, which decode with torchcodec and FFmpeg's
# libraries; the GPU image has neither (the CPU figures are in RESULTS.md).
set -uo pipefail

part=${1:?usage: bench/gpu_owed.sh 1|2|3}
OUT=${OUT:-/tmp/gpu_owed}
mkdir -p "$OUT"

run() {
    if [[ -n ${DRY:-} ]]; then
        printf '%q ' "$@"
        printf '\n'
    else
        "$@"
    fi
}

if [[ -z ${DRY:-} ]]; then
    cd "$(dirname "$0")/.." || exit 1
    if compgen -G ".whl/*.whl" > /dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site
    fi
    export PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
fi

case $part in
    1)
        run python3 bench/gpu_throughput.py --profile --budget-s 420 --json "$OUT/gpu_throughput.json" \
            2>&1 | tee "$OUT/gpu_throughput.log"
        ;;
    2)
        run python3 bench/gpu_throughput.py --batches "" --engine-batches "" --queue-slots auto,64 --queue-batches 4 \
            --queue-kinds refill --long-captions 0.01 --loop-stop-after 136 --budget-s 420 \
            --json "$OUT/queues.json" 2>&1 | tee "$OUT/queues.log"
        ;;
    3)
        run python3 bench/voice_stream.py --full-shapes --json "$OUT/voice.json" 2>&1 | tee "$OUT/voice.log"
        run python3 bench/gpu_throughput.py --batches "" --engine-batches "" --queue-slots auto --queue-batches 4 \
            --queue-kinds refill --long-captions 0.01 --loop-stop-after 0 --budget-s 300 \
            --json "$OUT/queues_loops.json" 2>&1 | tee "$OUT/queues_loops.log"
        ;;
    *)
        echo "usage: bench/gpu_owed.sh 1|2|3" >&2
        exit 2
        ;;
esac
