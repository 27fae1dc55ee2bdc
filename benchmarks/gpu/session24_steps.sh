#!/bin/bash
# Session 24: whole decode steps of the 1B and Qwen3-0.6B at 64 and 256 x 512 through
# session24_decode.py, for each value of one of its switches, two interleaved rounds; merged into OUT.
# Usage: session24_steps.sh OUT.json VARIABLE VALUE... (the caller exports the rest, e.g. S24_PAD_HEAD).
# Needs .gpuwork/shared_models (a copy of ../shared/models) and PYTHONPATH set by the caller.
set -u
out=$1 var=$2; shift 2
M=$PWD/.gpuwork/shared_models; J=/tmp/json24; rm -rf $J; mkdir -p $J
for r in 1 2; do
  for v in "$@"; do
    for m in llama-3.2-1b qwen3-0.6b; do
      echo "== $m $var=$v round $r"
      env $var=$v timeout 150 python3 benchmarks/gpu/session24_decode.py \
        --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$m-$v-$r.json --model $M/$m.json \
        --batch-sizes 64 256 --context 512 2>&1 | grep -v -i warn | grep -v "^written"
    done
  done
done
python3 benchmarks/gpu/merge_json.py $J $out
