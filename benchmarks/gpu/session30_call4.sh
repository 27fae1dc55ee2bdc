#!/bin/bash
# Session 30, call 4 (H100; carry .whl/serve and .gpuwork/shared_models): the 1B workload, 256 x (512 in,
# 128 out), with the next step's admissions hashed while the step before it runs (PAGEDLLM_HASH_AHEAD=1,
# the new default) against hashing in `schedule` (=0). Six processes in ABABAB order, four timed runs each,
# with the step trace's phases (session30_throughput_spread.py); then `bench throughput` once each way.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
for p in 1 2 3; do
  for h in 1 0; do
    echo "== process $p HASH_AHEAD=$h"
    PAGEDLLM_HASH_AHEAD=$h PAGEDLLM_STEP_TRACE=/tmp/trace-$p-$h timeout 150 python3 \
      benchmarks/gpu/session30_throughput_spread.py $M/llama-3.2-1b.json $OUT/call4-spread-$p-hash$h.json \
      --repeats 4 2>&1 | grep -v -i warn | grep "^run\|phases\|Error\|error"
  done
done
for h in 1 0; do
  PAGEDLLM_HASH_AHEAD=$h timeout 150 python3 -m pagedllm.cli bench throughput --load-format dummy \
    --max-model-len 2048 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
    --output-json $OUT/call4-bench-hash$h.json 2>&1 | grep "^Throughput\|^Roofline"
done
