#!/bin/bash
# Session 14, GPU call 11 (H100): the decode linears' plans in the forms a step runs them (norm producers,
# norm consumers, rotated and gated), against neighbouring plans, 1B and Qwen3-0.6B at 64 rows
# (benchmarks/gpu/session14_handover_sweep.py).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
SWEEP_BUDGET_S=420 timeout 500 python3 benchmarks/gpu/session14_handover_sweep.py main 2>&1 | grep -E "^==|rror" | tail -20
