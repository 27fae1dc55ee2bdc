#!/bin/bash
# Session 31, call 4 (H100; carry .whl/serve, .gpuwork/shared_models and ab_base, the tree of 53a29a0):
# the GPU tests of the decode graphs and async scheduling on this tree (block-id tuples, the input packer
# with one copy per buffer, the captured argmax); then the decode steps' host time part by part
# (session31_launch_breakdown.py), this tree and 53a29a0 in alternate processes, two runs each.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
PYTHONPATH=/tmp/site:$PWD timeout 300 python3 -m pytest -q -x --tb=short tests/test_cuda_graphs.py \
  tests/test_decode_inputs.py tests/test_async_scheduling.py tests/test_sampler.py 2>&1 | tail -5
for p in 1 2; do
  for tree in new base; do
    src=$PWD; [ $tree = base ] && src=$PWD/ab_base
    echo "== breakdown $p $tree"
    PYTHONPATH=/tmp/site:$src timeout 120 python3 benchmarks/gpu/session31_launch_breakdown.py \
      $M/llama-3.2-1b.json $OUT/call4-breakdown-$p-$tree.json --repeats 2 2>&1 | grep -v -i warn | tail -34
  done
done
