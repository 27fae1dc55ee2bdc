#!/bin/bash
# Session 32, call 1 (H100; carry .whl/serve and .gpuwork/shared_models): decode attention prefetching the
# next kernels' weights into L2, in whole steps (session32_l2_prefetch.py), with the chains profiled.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
timeout 540 python3 benchmarks/gpu/session32_l2_prefetch.py $OUT/call1-l2-prefetch.json --profile \
  --cases qwen3-0.6b-64 llama-3.2-1b-256 llama-3.2-1b-64 2>&1 | grep -v -i warn
