#!/bin/bash
# Session 15, GPU call 6 (H100; run as a command line, recorded here): the sweep of the Llama-3.2-1B's and
# Qwen3-0.6B's linears at 128 rows (session15_linears256.py).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
SWEEP_BUDGET_S=170 timeout 260 python3 benchmarks/gpu/session15_linears256.py 1b 128 2>&1 | grep -v "^    " | tail -20
SWEEP_BUDGET_S=150 timeout 240 python3 benchmarks/gpu/session15_linears256.py qwen3 128 2>&1 | grep -v "^    " | tail -20
