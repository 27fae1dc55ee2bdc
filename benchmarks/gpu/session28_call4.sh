#!/bin/bash
# Session 28, call 4 (H100; carry .whl/serve and .gpuwork/shared_models): the committed rule for steps of
# 129-256 rows (TMA plans for the gated product and small weights) against cuBLAS above 128 rows
# (PAGEDLLM_SKINNY_TMA_MAX_ROWS=0, the engine before): two interleaved rounds for the 1B and Qwen3-0.6B at
# 192 and 256 rows, one for the 8B at 256.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models J=/tmp/json28d; rm -rf $J; mkdir -p $J
run() {  # model tma-max-rows round batches...
  m=$1 t=$2 r=$3; shift 3
  echo "== $m TMA_MAX_ROWS=$t round $r"
  PAGEDLLM_SKINNY_TMA_MAX_ROWS=$t timeout 150 python3 -m pagedllm.cli bench decode --model $M/$m.json \
    --load-format dummy --max-model-len 2048 --batch-sizes "$@" --context 512 --steps 32 \
    --output-json $J/$m-$t-$r.json 2>&1 | grep -v -i warn | grep -v "^written" | grep -A3 "^ batch" | tail -n +2
  sleep 1
}
for r in 1 2; do
  for t in 256 0; do run llama-3.2-1b $t $r 192 256; run qwen3-0.6b $t $r 192 256; done
done
for t in 256 0; do run llama-3.1-8b $t 1 256; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call4-decode.json
