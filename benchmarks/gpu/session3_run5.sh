#!/bin/bash
# GPU run (H100) on main after merging issues 5 and 8: the CUDA tests, then preemption by swapping.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests/test_triton_generation.py tests/test_cuda_graphs.py \
  tests/test_fused_ops.py 2>&1 | tail -3
timeout 200 python3 benchmarks/gpu/session3_swap_check.py .gpuwork/shared_models/llama-3.2-1b.json 2>&1 | grep -v -i warn | tail -5
