#!/bin/bash
# Session 28, call 7 (H100; carry .whl/serve and .gpuwork/shared_models): call 6 had the 1B's offline
# workload 4.5-5% slower with the 129-256-row rule, TMA always run first. Again in ABBA order, with the
# default warm-up (8 prompts) and with the whole workload as warm-up (every step shape compiled before the
# clock starts).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
tp() { t=$1 w=$2 r=$3; echo "== 1b TMA_MAX_ROWS=$t warmup $w run $r"
  PAGEDLLM_SKINNY_TMA_MAX_ROWS=$t timeout 120 python3 -m pagedllm.cli bench throughput \
  --load-format dummy --max-model-len 2048 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 \
  --num-prompts 256 --warmup-prompts $w --output-json $OUT/call7-1b-$t-w$w-$r.json 2>&1 | grep -v -i warn \
  | grep -E "^Throughput|rror|Traceback"; }
for w in 8 256; do
  tp 0 $w 1; tp 256 $w 1; tp 256 $w 2; tp 0 $w 2
done
