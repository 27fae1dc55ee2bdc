#!/bin/bash
# Session 9, GPU call 6 (H100): serving the 1B at 16 and 64 requests/s (decode batches mostly <= 64 rows),
# PDL and the Triton linears on / off (PAGEDLLM_PDL=0), interleaved on, off, on, off.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
i=0
for mode in on off on off; do
  i=$((i+1)); pdl=$([ $mode = off ] && echo 0 || echo 1)
  echo "== serve $i $mode $(date +%T)"
  (cd benchmarks && PAGEDLLM_PDL=$pdl timeout 130 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
    --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 --request-rates 16 64 \
    --client-processes 4 --no-offline --name serve-pdl-$i-$mode 2>&1 | grep -v -i warn | tail -5; \
    cp results/serve-pdl-$i-$mode.json $OUT/ 2>/dev/null)
done
echo "== end $(date +%T)"
