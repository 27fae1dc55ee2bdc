#!/bin/bash
# Session 12, GPU call 16 (H100): RMSNorm's kernel with 8 (the rule), 4, 2 or 1 warps a row
# (S12_NORM_WARPS), 1B decode steps at 64 and 256 x 512, two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
for r in 1 2; do for w in 0 4 2 1; do echo "== warps $w (0: the rule) $r"
  S12_NORM_WARPS=$w timeout 100 python3 benchmarks/gpu/session12_norm_warps.py --load-format dummy --max-model-len 2048 \
    --steps 32 --output-json $J/decode-1b-normwarps-$w-$r.json --model $M/llama-3.2-1b.json --batch-sizes 64 256 \
    --context 512 2>&1 | grep -v -i warn | tail -2
done; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call16-decode.json
