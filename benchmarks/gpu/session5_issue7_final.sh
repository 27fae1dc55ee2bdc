#!/bin/bash
# Session 5, issue 7's measurement on main after the serving fixes: the no-compile GPU test, three
# saturated server-vs-offline runs (offline varies between processes: report every ratio), and the
# request-rate sweep up to saturation; 8 client processes (4 were client-bound at ~100% CPU each).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py tests/test_triton_attention.py \
  -k "compile" > $OUT/cuda-tests.log 2>&1
grep -E "^E  |passed|failed" $OUT/cuda-tests.log | head -10
cd benchmarks
ARGS="--model $M/llama-3.2-1b.json --load-format dummy --dtype bfloat16 --max-model-len 2048 --num-prompts 256
  --input-len 512 --output-len 128 --client-processes 8"
for i in 1 2 3; do
  timeout 150 python3 serve_vs_offline.py $ARGS --request-rates inf --name serve-gpu-llama-3.2-1b-session5-inf$i \
    2>&1 | grep -E "^\| inf|saturated|rate inf"
  cp results/serve-gpu-llama-3.2-1b-session5-inf$i.json $OUT/
done
timeout 200 python3 serve_vs_offline.py $ARGS --request-rates 16 32 64 128 inf --name serve-gpu-llama-3.2-1b-session5 \
  2>&1 | grep -v -i warn | tail -14
cp results/serve-gpu-llama-3.2-1b-session5.json $OUT/
