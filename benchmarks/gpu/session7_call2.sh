#!/bin/bash
# Session 7, GPU call 2 (H100): where the Llama-3.2-1B 256 x (512, 128) run's time goes, with new prompts for
# every run (call 1's phases repeated its prompts, so the prefix cache skipped their prefill): prefill-only
# and whole runs, a step trace of each, a cProfile of the host in one whole run; async scheduling, then
# synchronous.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
for mode in async no-async; do
  echo "== $mode"
  PAGEDLLM_STEP_TRACE=$OUT/trace-$mode timeout 240 python3 benchmarks/gpu/session7_phases.py --model $M/llama-3.2-1b.json \
    --out $OUT --name phases-1b-$mode --$mode-scheduling --cprofile 2>&1 | grep -v -i -E "warn|USDT" | tail -40
done
