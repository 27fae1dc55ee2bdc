#!/bin/bash
# Session 11, GPU call 6 (H100): the GPU tests after the skinny linears' new plans (kernels, warm-up,
# CUDA and piecewise graphs; generation against the reference backend, element-wise kernels, argmax),
# then Qwen3-0.6B decode steps at 64 x 512 with the new plans and session 9's (S11_OLD_SKINNY=1), interleaved.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 100 python3 benchmarks/gpu/session11_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --model $M/qwen3-0.6b.json --batch-sizes 64 --context 512 --output-json $OUT/$name.json 2>&1 | grep -v -i warn | tail -2; }
i=0
for s in new old new old; do i=$((i+1)); echo "== qwen3 $s $i $(date +%T)"
  if [ $s = old ]; then S11_OLD_SKINNY=1 dec decode-qwen3-plans-$s-$i; else dec decode-qwen3-plans-$s-$i; fi
done
P="python3 -m pytest -v -p no:cacheprovider --durations=8"
(timeout 420 $P tests/test_skinny_linear.py tests/test_triton_attention.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py \
  tests/test_piecewise_graphs.py -k "not smollm2" > $OUT/tests-a.log 2>&1) &
(timeout 420 $P tests/test_triton_generation.py tests/test_fused_ops.py tests/test_greedy_argmax.py tests/test_startup_heap_freeze.py \
  > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -2 $f; done
echo "== end $(date +%T)"
