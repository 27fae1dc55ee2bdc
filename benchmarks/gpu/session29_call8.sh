#!/bin/bash
# Session 29, call 8 (H100; carry .whl/serve and .gpuwork/shared_models): Qwen3-0.6B's 64-row skinny plans
# varied one linear at a time inside the whole decode step's graph (three interleaved rounds).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
timeout 500 python3 benchmarks/gpu/session29_attention_in_step.py $OUT/call8-linears-in-step.json \
  --cases linears-qwen3-0.6b-64 2>&1 | grep -v -i warn | grep "^  \|^==\|Error"
