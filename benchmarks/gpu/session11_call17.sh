#!/bin/bash
# Session 11, GPU call 17 (H100), on 58e1938's decode.py plus an ATTENTION_PDL switch (decode attention
# launched without PDL, S11_ATTN_NO_PDL=1; the tree was not committed): 1B decode steps at 64 x 512, the
# carried-ids launch (now) or the one before (S11_NO_CARRY=1), attention with and without PDL, interleaved.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 100 python3 benchmarks/gpu/session11_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --output-json $OUT/$name.json --model $M/llama-3.2-1b.json --batch-sizes 64 --context 512 2>&1 \
  | grep -v -i warn | tail -1; }
i=0
for s in now-pdl now-nopdl before-pdl before-nopdl before-nopdl before-pdl now-nopdl now-pdl; do i=$((i+1)); echo "== $s $i"
  unset S11_NO_CARRY S11_ATTN_NO_PDL
  case $s in before-*) export S11_NO_CARRY=1;; esac
  case $s in *-nopdl) export S11_ATTN_NO_PDL=1;; esac
  dec decode-1b-attn-$s-$i
done
