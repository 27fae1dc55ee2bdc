#!/bin/bash
# Session 9, GPU call 4 (H100): the GPU tests with PDL and the Triton decode linears (shared-memory rule
# fixed for the 8B's shapes), then Llama-3.1-8B decode at 64 x 1024, PDL off / on.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -v -p no:cacheprovider --durations=5"
(timeout 430 $P tests/test_triton_attention.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py \
  tests/test_piecewise_graphs.py -k "not smollm2" > $OUT/tests-a.log 2>&1) &
(timeout 430 $P tests/test_skinny_linear.py tests/test_triton_generation.py tests/test_fused_ops.py tests/test_greedy_argmax.py \
  tests/test_startup_heap_freeze.py > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -2 $f; done
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 70 python3 -m pagedllm.cli bench decode --load-format dummy --max-model-len 2048 \
  --steps 32 --model $M/llama-3.1-8b.json --batch-sizes 64 --context 1024 --output-json $OUT/$name.json 2>&1 | grep -v -i warn | tail -2; }
echo "== 8b on"; dec decode-8b-on
echo "== 8b off"; PAGEDLLM_PDL=0 dec decode-8b-off
