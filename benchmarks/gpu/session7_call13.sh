#!/bin/bash
# Session 7, GPU call 13 (H100): why the server got slower with admissions scheduled ahead. The same serving
# run (64 req/s only) of "pre" (220eedf = main after the revert) and "ahead" (a04b7a1), the core step-traced.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
for tree in pre ahead; do
  T=$PWD/.gpuwork/s7/$tree && cp -r benchmarks tests $T/
  echo "== $tree"
  (cd $T/benchmarks && PAGEDLLM_STEP_TRACE=$OUT/trace-$tree PYTHONPATH=/tmp/site:$T timeout 200 python3 serve_vs_offline.py \
    --model $M/llama-3.2-1b.json --load-format dummy --dtype bfloat16 --max-model-len 2048 --num-prompts 256 \
    --input-len 512 --output-len 128 --request-rates 64 --client-processes 4 --no-offline --name serve-traced-$tree 2>&1 \
    | grep -v -i warn | tail -3)
done
