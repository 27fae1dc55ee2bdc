#!/bin/bash
# Session 7, GPU call 12 (H100): serving and offline, "pre" (220eedf) against the final scheduler (admissions
# ahead only beside a prefill in flight). serve_vs_offline.py --no-offline at 64 and inf req/s, 4 client
# processes, then one offline bench throughput run of each tree.
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
    --request-rates 64 inf --client-processes 4 --no-offline --name serve-final-$tree 2>&1 \
    | grep -v -i warn | tail -8; cp results/serve-final-$tree.json $OUT/ 2>/dev/null)
done
for tree in pre new; do
  T=$([ $tree = pre ] && echo $PRE || echo $PWD)
  echo "== offline 1B $tree"; (cd $T && PYTHONPATH=/tmp/site:$T timeout 100 python3 -m pagedllm.cli bench throughput \
    --load-format dummy --max-model-len 2048 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 \
    --num-prompts 256 --output-json $OUT/final-offline-1b-$tree.json 2>&1 | grep -E "Throughput|oofline|rror")
done
