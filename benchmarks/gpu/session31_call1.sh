#!/bin/bash
# Session 31, call 1 (H100; carry .whl/serve and .gpuwork/shared_models): the decode steps' host time
# part by part (session31_launch_breakdown.py), two processes, plus the scheduler-only host benchmark
# (session31_host_decode_bench.py) to compare this host's Python speed with the CPU machine's.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nproc; lscpu | grep "Model name"
python3 benchmarks/gpu/session31_host_decode_bench.py
for p in 1 2; do
  timeout 250 python3 benchmarks/gpu/session31_launch_breakdown.py $PWD/.gpuwork/shared_models/llama-3.2-1b.json \
    $OUT/call1-breakdown-$p.json --repeats 3 2>&1 | grep -v -i warn
done
