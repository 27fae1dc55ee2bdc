#!/bin/bash
# Session 27, call 4 (H100; carry .whl/serve and .gpuwork/shared_models): the rotated qkv launch storing
# K/V (PAGEDLLM_QKV_STORES_KV=1, the default) against attention's K/V write launch (=0): whole decode
# steps, two interleaved rounds for the 1B (64 and 256 rows: the 256-row step runs neither, a control),
# one for the 8B at 64 rows, Qwen3-0.6B at 64 (runs neither: a control).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models J=/tmp/json27; rm -rf $J; mkdir -p $J
run() {  # model stores round batches...
  m=$1 v=$2 r=$3; shift 3
  echo "== $m stores=$v round $r"
  PAGEDLLM_QKV_STORES_KV=$v timeout 150 python3 -m pagedllm.cli bench decode --model $M/$m.json --load-format dummy \
    --max-model-len 2048 --batch-sizes "$@" --context 512 --steps 32 --output-json $J/$m-stores$v-$r.json 2>&1 \
    | grep -v -i warn | grep -v "^written"
  sleep 2
}
for r in ${ROUNDS:-1 2}; do
  for v in 1 0; do run llama-3.2-1b $v $r 64 256; done
done
for v in 1 0; do run qwen3-0.6b $v 1 64; done
for v in 1 0; do run llama-3.1-8b $v 1 64; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call4-decode.json
