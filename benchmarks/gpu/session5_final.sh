#!/bin/bash
# Session 5, last GPU check of main: the decode pairs at the Llama-3.2-1B layout against the reference,
# the no-compile test, and the saturated server against offline once more (8 client processes).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_triton_attention.py -k "several_kv_heads or plan" \
  tests/test_cuda_graphs.py -k "several_kv_heads or plan or compiles" > $OUT/tests.log 2>&1
grep -E "^E  |^FAILED|passed|failed" $OUT/tests.log | head -12
cd benchmarks && timeout 150 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
  --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 --client-processes 8 \
  --request-rates inf --name serve-gpu-llama-3.2-1b-session5-final 2>&1 | grep -E "^\| inf|saturated|rate inf"
cp results/serve-gpu-llama-3.2-1b-session5-final.json $OUT/
