#!/bin/bash
# Session 11, GPU call 2 (H100; call 1 stopped at a Triton compile error), on the tree of e5efa89 (taken back
# in f58ef9a, whose code no longer reads these variables): L2 prefetch before the PDL wait. Llama-3.2-1B decode steps at 64 and
# 256 x 512, interleaved: base (main's prefetch: 2 weight tiles per skinny-linear program, no K/V
# prefetch), kv (decode attention prefetches its first 2 K/V tiles), kvlin (kv + skinny linears prefetch
# up to 16 MB of their weights), kvlinlm (kvlin + LM head on the skinny linear at <= 64 rows).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 110 python3 benchmarks/gpu/session11_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512 --output-json $OUT/$name.json "$@" 2>&1 \
  | grep -v -i warn | tail -2; }
run() { s=$1; i=$2; echo "== $s $i $(date +%T)"
  case $s in
    base) PAGEDLLM_KV_PREFETCH=0 dec decode-1b-$s-$i;;
    kv) dec decode-1b-$s-$i;;
    kvlin) PAGEDLLM_SKINNY_PREFETCH=1000 PAGEDLLM_SKINNY_PREFETCH_MB=16 dec decode-1b-$s-$i;;
    kvlinlm) S11_LM_HEAD_SKINNY=1 PAGEDLLM_SKINNY_PREFETCH=1000 PAGEDLLM_SKINNY_PREFETCH_MB=16 dec decode-1b-$s-$i;;
  esac; }
i=0
for s in base kv kvlin kvlinlm kvlinlm kvlin kv base; do i=$((i+1)); run $s $i; done
echo "== end $(date +%T)"
