#!/bin/bash
# Session 7, GPU call 11 (H100): serving with admissions scheduled ahead. `serve_vs_offline.py --no-offline`
# (Llama-3.2-1B shape, 256 prompts x (512, 128), request rates 32, 64 and inf, 4 client processes), "pre"
# (220eedf: every admitting step synchronous) then "new" (a04b7a1), each with its own warm-up run.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
PRE=$PWD/.gpuwork/s7/pre && cp -r benchmarks tests $PRE/
for tree in pre new; do
  T=$([ $tree = pre ] && echo $PRE || echo $PWD)
  echo "== $tree"
  (cd $T/benchmarks && PYTHONPATH=/tmp/site:$T timeout 270 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json \
    --load-format dummy --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 \
    --request-rates 32 64 inf --client-processes 4 --no-offline --name serve-admissions-$tree 2>&1 \
    | grep -v -i warn | tail -8; cp results/serve-admissions-$tree.json $OUT/ 2>/dev/null)
done
