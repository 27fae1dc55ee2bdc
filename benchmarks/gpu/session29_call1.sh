#!/bin/bash
# Session 29, call 1 (H100; carry .whl/serve and .gpuwork/shared_models): decode attention launches timed
# inside the whole decode step's graph (session29_attention_in_step.py), Qwen3-0.6B at 64 rows and the 1B
# at 256 and 64 rows, three interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
timeout 540 python3 benchmarks/gpu/session29_attention_in_step.py $OUT/call1-attention-in-step.json 2>&1 \
  | grep -v -i warn
