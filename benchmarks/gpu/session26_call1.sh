#!/bin/bash
# Session 26, call 1 (H100; carry .whl/serve): the skinny linear with TMA-loaded tiles against cuBLAS and
# the engine's pointer plans at 256 rows, the 1B's and Qwen3-0.6B's linears (session26_tma_linears.py).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
SWEEP_BUDGET_S=230 timeout 290 python3 benchmarks/gpu/session26_tma_linears.py $OUT/call1-tma-1b.json 1b 256 2>&1 \
  | grep -v -i warn | grep -E "==|best|plan|  1 " | cut -c1-150
SWEEP_BUDGET_S=180 timeout 240 python3 benchmarks/gpu/session26_tma_linears.py $OUT/call1-tma-qwen3.json qwen3 256 2>&1 \
  | grep -v -i warn | grep -E "==|best|plan" | cut -c1-150
