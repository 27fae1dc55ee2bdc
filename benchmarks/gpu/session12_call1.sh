#!/bin/bash
# Session 12, GPU call 1 (H100): how much of a 1B decode step at 64 x 512 its small kernels cost. Each
# S12_SKIP_* switch drops one kind of launch (wrong numbers, real times); two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 100 python3 benchmarks/gpu/session12_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --output-json $OUT/$name.json --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512 2>&1 | grep -v -i warn | tail -2; }
for r in 1 2; do
  for s in base silu norm rotary kv all; do echo "== $s $r"
    unset S12_SKIP_SILU S12_SKIP_NORM S12_SKIP_ROTARY S12_SKIP_KV
    case $s in silu) export S12_SKIP_SILU=1;; norm) export S12_SKIP_NORM=1;; rotary) export S12_SKIP_ROTARY=1;;
      kv) export S12_SKIP_KV=1;; all) export S12_SKIP_SILU=1 S12_SKIP_NORM=1 S12_SKIP_ROTARY=1 S12_SKIP_KV=1;; esac
    dec decode-1b-skip-$s-$r
  done
done
