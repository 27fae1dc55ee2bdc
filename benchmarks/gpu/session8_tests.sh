#!/bin/bash
# Session 8, GPU tests (H100) after the piecewise graphs:
# kernels, warm-up and CUDA graphs in one process; generation against the reference backend and the new
# kernels in another.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
P="python3 -m pytest -v -p no:cacheprovider --durations=8"
(timeout 480 $P tests/test_triton_attention.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py tests/test_piecewise_graphs.py -k "not smollm2" \
  > $OUT/tests-a.log 2>&1) &
(timeout 480 $P tests/test_triton_generation.py tests/test_fused_ops.py tests/test_greedy_argmax.py tests/test_startup_heap_freeze.py > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |FAILED|passed|failed|s call" $f | head -14; tail -2 $f; done
