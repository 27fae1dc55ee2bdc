#!/bin/bash
# Session 9, GPU call 1 (H100): the 1B's decode linears, cuBLAS against the Triton weight-streaming kernel,
# and 16 layers of them chained with and without PDL (benchmarks/gpu/session9_linears.py).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv
SWEEP_BUDGET_S=430 timeout 560 python3 benchmarks/gpu/session9_linears.py "session 9 call 1: skinny_linear as in the working tree" 2>&1 | tail -60
