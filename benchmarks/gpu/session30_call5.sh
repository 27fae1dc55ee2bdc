#!/bin/bash
# Session 30, call 5 (H100; carry .whl/serve and .gpuwork/shared_models): cProfile of the 1B workload's
# second run in a process (session30_host_profile.py): where the host's time goes in its steps.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 200 python3 benchmarks/gpu/session30_host_profile.py $PWD/.gpuwork/shared_models/llama-3.2-1b.json \
  $OUT/call5-host-profile.txt 2>&1 | grep -v -i warn | head -5
