#!/bin/bash
# Session 31, call 3 (H100; carry .whl/serve and .gpuwork/shared_models): the captured-argmax test that
# failed in call 2, with its traceback; the decode steps' host time with the packer timed on its own.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
timeout 150 python3 -m pytest -q -x --tb=short tests/test_cuda_graphs.py -k captured_argmax 2>&1 | tail -40
timeout 150 python3 benchmarks/gpu/session31_launch_breakdown.py $M/llama-3.2-1b.json $OUT/call3-breakdown.json \
  --repeats 2 2>&1 | grep -v -i warn | tail -32
