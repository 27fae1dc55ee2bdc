#!/bin/bash
# Session 31, call 9 (H100; carry .whl/serve and .gpuwork/shared_models): the GPU tests this session's
# changes touch, on the final tree: decode graphs (packer, captured argmax), piecewise graphs (mixed
# steps scheduled ahead write their decode rows' tokens before the pieces), async scheduling, kernel
# warm-up and generation through the Triton backend.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 560 python3 -m pytest -q --tb=short tests/test_cuda_graphs.py tests/test_piecewise_graphs.py \
  tests/test_async_scheduling.py tests/test_kernel_warmup.py tests/test_triton_generation.py \
  -k "not smollm" 2>&1 | tail -8
