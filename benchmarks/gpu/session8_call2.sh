#!/bin/bash
# Session 8, GPU call 2 (H100): serving the 1B shape at 64 requests/s with piecewise graphs on and off,
# interleaved (on, off, on, off), each its own server; serve_vs_offline.py --no-offline, 4 client processes.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
i=0
for mode in on off on off; do
  i=$((i+1)); flag=$([ $mode = off ] && echo "--piecewise-graph-max-tokens 0" || echo "")
  echo "== $i $mode $(date +%T)"
  (cd benchmarks && timeout 135 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
    --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 --request-rates 64 \
    --client-processes 4 --no-offline $flag --name serve-piecewise-$mode-$i 2>&1 | grep -v -i warn | tail -4; \
    cp results/serve-piecewise-$mode-$i.json $OUT/ 2>/dev/null)
done
echo "== end $(date +%T)"
