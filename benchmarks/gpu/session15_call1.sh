#!/bin/bash
# Session 15, GPU call 1 (H100): the skinny linear with GEMM-sized tiles at 256 rows against cuBLAS, for the
# Llama-3.2-1B's and Qwen3-0.6B's four linears (benchmarks/gpu/session15_linears256.py).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
SWEEP_BUDGET_S=250 timeout 330 python3 benchmarks/gpu/session15_linears256.py 1b 256 "main-dcb6eb8" 2>&1 | tail -200
SWEEP_BUDGET_S=170 timeout 240 python3 benchmarks/gpu/session15_linears256.py qwen3 256 "main-dcb6eb8" 2>&1 | grep -v "^    " | tail -40
