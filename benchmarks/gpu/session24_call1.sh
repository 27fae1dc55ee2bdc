#!/bin/bash
# Session 24, call 1 (H100; carry .whl/serve and .gpuwork/shared_models): the 1B's linears over weights
# in padded rows (session24_padded_weights.py), then whole decode steps of the 1B and Qwen3-0.6B at 64
# and 256 x 512 with main's weights and padded ones (session24_decode.py), two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 150 python3 benchmarks/gpu/session24_padded_weights.py $OUT/call1-padded-weights.json 2>&1 | grep -v -i warn
M=$PWD/.gpuwork/shared_models; J=/tmp/json24; rm -rf $J; mkdir -p $J
for r in 1 2; do
  for v in ${VARIANTS:-pad0 pad64 pad8}; do
    for m in llama-3.2-1b qwen3-0.6b; do
      echo "== $m $v round $r"
      S24_PAD=${v#pad} S24_PAD_HEAD=1 timeout 150 python3 benchmarks/gpu/session24_decode.py \
        --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$m-$v-$r.json --model $M/$m.json \
        --batch-sizes 64 256 --context 512 2>&1 | grep -v -i warn | grep -v "^written"
    done
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call1-decode.json
