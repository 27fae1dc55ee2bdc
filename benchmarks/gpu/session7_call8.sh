#!/bin/bash
# Session 7, GPU call 8 (H100): the async scheduling tests on the GPU after schedule_ahead learned admissions
# and prefill chunks (compiled kernels, CUDA graphs, bf16 default device), then the step-traced phases run.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
timeout 330 python3 -m pytest -v -p no:cacheprovider --durations=5 tests/test_async_scheduling.py -k "not smollm2" \
  > $OUT/tests-async.log 2>&1; grep -E "FAILED|^E  " $OUT/tests-async.log | head -20; tail -3 $OUT/tests-async.log
PAGEDLLM_STEP_TRACE=$OUT/trace-phases timeout 200 python3 benchmarks/gpu/session7_phases.py \
  --model $M/llama-3.2-1b.json --out $OUT --name phases-1b-async-admissions 2>&1 | grep -v -i -E "warn|USDT" | head -8
