#!/bin/bash
# Session 25, call 4 (H100; carry .whl/serve and .gpuwork/shared_models): the norm producers at 64 rows
# with their rows split instead of their input (session25_producer_rows.py), then whole 64-row decode
# steps of the 1B and Qwen3-0.6B with main's producers and with 32-row ones (session25_decode.py,
# S25_PRODUCER=32), two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 260 python3 benchmarks/gpu/session25_producer_rows.py $OUT/call4-producer-rows.json 2>&1 | grep -v -i warn \
  | grep -E "\*|==| 32, [0-9]+, 256, 1, 4, 4\)" | cut -c1-160
M=$PWD/.gpuwork/shared_models J=/tmp/json25; rm -rf $J; mkdir -p $J
for r in 1 2; do
  for v in 0 32; do
    for m in llama-3.2-1b qwen3-0.6b; do
      echo "== $m S25_PRODUCER=$v round $r"
      S25_PRODUCER=$v timeout 100 python3 benchmarks/gpu/session25_decode.py bench decode --model $M/$m.json \
        --load-format dummy --max-model-len 2048 --batch-sizes 64 --context 512 --steps 32 \
        --output-json $J/$m-$v-$r.json 2>&1 | grep -v -i warn | grep -v "^written"
    done
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call4-decode.json
