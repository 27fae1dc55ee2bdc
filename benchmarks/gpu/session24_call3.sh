#!/bin/bash
# Session 24, call 3 (H100; carry .whl/serve): the GPU tests that touch the KV cache, on the engine's
# head-major cache: the attention kernels and their backend, block copies and swaps, warm-up, CUDA
# graphs, preemption by swapping, and whole-model generation against the reference backend.
set -u -o pipefail
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 560 python3 -m pytest -q -p no:cacheprovider -n 8 --durations=8 tests/test_triton_attention.py \
  tests/test_block_ops.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py tests/test_swap_and_abort.py \
  tests/test_triton_generation.py 2>&1 | grep -v -i "warn" | tee $OUT/call3-tests.log
