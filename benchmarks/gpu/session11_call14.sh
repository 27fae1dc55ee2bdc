#!/bin/bash
# Session 11, GPU call 14 (H100), on the decode.py of 58e1938 (carried block ids, 32-token tiles for one KV head
# of <= 64 dims per program): 1B decode steps at 64 x 512, that launch (now) against the one before
# (S11_NO_CARRY=1), each with PDL on and off (PAGEDLLM_PDL=0: cuBLAS linears too), interleaved.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 100 python3 benchmarks/gpu/session11_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --output-json $OUT/$name.json --model $M/llama-3.2-1b.json --batch-sizes 64 --context 512 2>&1 | grep -v -i warn | tail -1; }
i=0
# NOTE: needs that decode.py in the tree (git show 58e1938:pagedllm/attention/triton/decode.py).
for s in now-pdl before-pdl now-nopdl before-nopdl now-pdl before-pdl now-nopdl before-nopdl; do i=$((i+1)); echo "== $s $i"
  unset S11_NO_CARRY PAGEDLLM_PDL
  case $s in before-*) export S11_NO_CARRY=1;; esac
  case $s in *-nopdl) export PAGEDLLM_PDL=0;; esac
  dec decode-1b-$s-$i
done
