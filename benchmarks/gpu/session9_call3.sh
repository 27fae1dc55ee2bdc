#!/bin/bash
# Session 9, GPU call 3 (H100): decode steps with programmatic dependent launch (PDL) and the Triton decode
# linears, interleaved A/B: off (PAGEDLLM_PDL=0: cuBLAS, no PDL), pdl-kernels (PDL, cuBLAS linears),
# no-prefetch (PDL, Triton linears without the weight prefetch), on (all). Llama-3.2-1B at 64 and 256 x 512,
# Llama-3.1-8B at 64 x 1024.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_linear.py > $OUT/tests-skinny.log 2>&1; tail -1 $OUT/tests-skinny.log
M=$PWD/.gpuwork/shared_models
dec() { name=$1; model=$2; shift 2; timeout 120 python3 -m pagedllm.cli bench decode --load-format dummy --max-model-len 2048 \
  --steps 32 --model $M/$model.json "$@" --output-json $OUT/$name.json 2>&1 | grep -v -i warn | tail -3; }
run() { setting=$1; shift; echo "== $setting $*"
  case $setting in
    off) PAGEDLLM_PDL=0 dec "$@";;
    pdl-kernels) PAGEDLLM_SKINNY_MAX_ROWS=0 dec "$@";;
    no-prefetch) PAGEDLLM_SKINNY_PREFETCH=0 dec "$@";;
    on) dec "$@";;
  esac; }
for s in off on pdl-kernels no-prefetch on off; do
  run $s decode-1b-$s-$RANDOM llama-3.2-1b --batch-sizes 64 256 --context 512
done
for s in off on; do run $s decode-8b-$s llama-3.1-8b --batch-sizes 64 --context 1024; done
