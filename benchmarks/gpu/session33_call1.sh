#!/bin/bash
# Session 33, call 1 (H100; carry .whl/serve): the review fixes touch the sampler (every EOS id blocked
# before min_tokens, float32 clamps, top_p keeps the top token), the runner's signature and the engine's
# request checks. The GPU tests of the engine paths they run through: CUDA graphs (the captured argmax
# and its fallbacks), Triton generation and piecewise graphs, async scheduling.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 540 python3 -m pytest -q --tb=short -k "not smollm" tests/test_cuda_graphs.py tests/test_greedy_argmax.py \
  tests/test_triton_generation.py tests/test_piecewise_graphs.py tests/test_async_scheduling.py 2>&1 | tail -8
