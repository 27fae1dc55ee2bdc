#!/bin/bash
# Session 6, GPU tests (H100) after the prefill change: kernels (compiled, bf16 too), warm-up, CUDA graphs,
# then greedy generation with the Triton backend against the reference backend.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
P="python3 -m pytest -q -p no:cacheprovider --durations=5"
timeout 300 $P tests/test_triton_attention.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py -k "not smollm2" \
  > $OUT/tests-a.log 2>&1
timeout 220 $P tests/test_triton_generation.py > $OUT/tests-b.log 2>&1
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |^FAILED|passed|failed|s call" $f | head -14; done
