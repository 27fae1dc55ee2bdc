#!/bin/bash
# Session 10, GPU call 6 (H100): serving the 1B as session 9's call 6 did (where 2 of 4 runs lost one
# request each to a client-side httpx.ReadError), now with idle connections kept 30 s by the server.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
for i in 1 2; do
  echo "== serve $i $(date +%T)"
  (cd benchmarks && timeout 140 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
    --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 --request-rates 16 64 \
    --client-processes 4 --no-offline --name serve-keepalive-$i 2>&1 | grep -v -i warn | tail -5; \
    cp results/serve-keepalive-$i.json $OUT/ 2>/dev/null)
done
echo "== end $(date +%T)"
