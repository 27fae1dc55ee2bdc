#!/bin/bash
# Session 30, call 3 (H100; carry .whl/serve and .gpuwork/shared_models): the 1B workload, 256 x (512 in, 128
# out), timed eight times in each of two processes with the engine's step trace on
# (session30_throughput_spread.py), then twice by `bench throughput` itself (one run a process).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
for p in 1 2; do
  echo "== process $p"
  PAGEDLLM_STEP_TRACE=/tmp/trace$p timeout 200 python3 benchmarks/gpu/session30_throughput_spread.py \
    $M/llama-3.2-1b.json $OUT/call3-spread-$p.json --repeats 8 2>&1 | grep -v -i warn | grep "^run\|Error\|error"
  cp /tmp/trace$p.* $OUT/ 2>/dev/null
done
for r in 1 2; do
  timeout 150 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 \
    --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
    --output-json $OUT/call3-bench-$r.json 2>&1 | grep "^Throughput\|^Roofline"
done
