#!/bin/bash
# Session 26, call 3 (H100; carry .whl/serve): the 64-row weight-streaming plans by TMA against their
# pointer loads (the 1B, Qwen3-0.6B), then the TMA sweep at 256 rows for the 8B, whose steps of 192 and
# 256 rows the call-2 rule made slower (session26_tma_linears.py).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
for m in 1b qwen3; do
  SWEEP_BUDGET_S=80 timeout 150 python3 benchmarks/gpu/session26_tma_linears.py $OUT/call3-tma-$m-64.json $m 64 2>&1 \
    | grep -v -i warn | grep -E "==|best|plan" | cut -c1-150
done
SWEEP_BUDGET_S=220 timeout 290 python3 benchmarks/gpu/session26_tma_linears.py $OUT/call3-tma-8b-256.json 8b 256 2>&1 \
  | grep -v -i warn | grep -E "==|best|plan" | cut -c1-150
