#!/bin/bash
# Session 28, call 6 (H100; carry .whl/serve and .gpuwork/shared_models): issue 6's offline workloads with
# the committed 129-256-row rule against cuBLAS above 128 rows (PAGEDLLM_SKINNY_TMA_MAX_ROWS=0): the 1B's
# 256 x (512, 128) in two interleaved rounds, Qwen3-0.6B's uniform 100-1024 in one.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
tp() { t=$1; shift; PAGEDLLM_SKINNY_TMA_MAX_ROWS=$t timeout 120 python3 -m pagedllm.cli bench throughput \
  --load-format dummy --max-model-len 2048 "$@" 2>&1 | grep -v -i warn | grep -E "^Throughput|oofline|rror|Traceback"; }
for r in 1 2; do
  for t in 256 0; do
    echo "== 1b TMA_MAX_ROWS=$t round $r"; tp $t --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 \
      --num-prompts 256 --output-json $OUT/call6-1b-$t-$r.json
  done
done
for t in 256 0; do
  echo "== qwen3 TMA_MAX_ROWS=$t"; tp $t --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 \
    --num-prompts 256 --output-json $OUT/call6-qwen3-$t.json
done
