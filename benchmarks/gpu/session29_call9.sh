#!/bin/bash
# Session 29, call 9 (H100; carry .whl/serve and .gpuwork/shared_models): decode attention releasing the
# next kernel (PDL) after its loop against after its wait, inside whole steps: Qwen3-0.6B at 64 and 256
# rows, the 1B at 64 and 256, the 8B at 64 (three interleaved rounds).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
timeout 540 python3 benchmarks/gpu/session29_attention_in_step.py $OUT/call9-release-in-step.json --cases \
  release-qwen3-0.6b-64 release-qwen3-0.6b-256 release-llama-3.2-1b-64 release-llama-3.2-1b-256 \
  release-llama-3.1-8b-64 2>&1 | grep -v -i warn | grep "^  \|^==\|Error"
