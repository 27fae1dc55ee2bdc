#!/bin/bash
# Session 8, GPU call 4 (H100): eager against piecewise steps on the 1B (after caching the decode plan) and
# the 8B shapes; then serving the 1B at 16, 64 and unlimited requests/s with piecewise graphs off and on.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
for model in llama-3.2-1b llama-3.1-8b; do
  echo "== mixed steps $model $(date +%T)"
  timeout 170 python3 benchmarks/gpu/session8_mixed_steps.py --model $M/$model.json --out $OUT/mixed-$model.json 2>&1 \
    | grep -v -i warn | tail -7
done
for mode in off on; do
  flag=$([ $mode = off ] && echo "--piecewise-graph-max-tokens 0" || echo "")
  echo "== serve $mode $(date +%T)"
  (cd benchmarks && timeout 150 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
    --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 --request-rates 16 64 inf \
    --client-processes 4 --no-offline $flag --name serve-rates-piecewise-$mode 2>&1 | grep -v -i warn | tail -8; \
    cp results/serve-rates-piecewise-$mode.json $OUT/ 2>/dev/null)
done
echo "== end $(date +%T)"
