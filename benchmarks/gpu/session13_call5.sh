#!/bin/bash
# Session 13, GPU call 5 (H100): the skinny linears' shared-memory budget (benchmarks/gpu/session13_decode.py):
# 200 KB (one program an SM, today), 112 KB (two) and 76 KB (three), Llama-3.2-1B decode steps at 64 x 512,
# two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
for r in 1 2; do
  for kb in 200 112 76; do echo "== smem $kb KB, round $r"
    S13_SMEM_KB=$kb timeout 150 python3 benchmarks/gpu/session13_decode.py --load-format dummy --max-model-len 2048 --steps 32 \
      --output-json $J/decode-1b-smem$kb-$r.json --model $M/llama-3.2-1b.json --batch-sizes 64 --context 512 2>&1 | grep -v -i warn | tail -2
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call5-decode.json
