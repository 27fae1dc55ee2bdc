#!/bin/bash
# Session 31, call 2 (H100; carry .whl/serve, .gpuwork/shared_models and ab_base, the tree of 53a29a0):
# the GPU tests of the decode graphs and async scheduling on this tree; the decode steps' host time part
# by part (session31_launch_breakdown.py) on this tree and on 53a29a0; then the 1B workload on both, in
# ABAB processes, three timed runs each (session30_throughput_spread.py).
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
PYTHONPATH=/tmp/site:$PWD timeout 200 python3 -m pytest -q -x tests/test_cuda_graphs.py tests/test_decode_inputs.py \
  tests/test_async_scheduling.py 2>&1 | tail -3
for tree in new base; do
  src=$PWD; [ $tree = base ] && src=$PWD/ab_base
  echo "== breakdown $tree"
  PYTHONPATH=/tmp/site:$src timeout 150 python3 benchmarks/gpu/session31_launch_breakdown.py $M/llama-3.2-1b.json \
    $OUT/call2-breakdown-$tree.json --repeats 2 2>&1 | grep -v -i warn | tail -14
done
for p in 1 2; do
  for tree in new base; do
    src=$PWD; [ $tree = base ] && src=$PWD/ab_base
    echo "== process $p $tree"
    PYTHONPATH=/tmp/site:$src PAGEDLLM_STEP_TRACE=/tmp/trace-$p-$tree timeout 120 python3 \
      benchmarks/gpu/session30_throughput_spread.py $M/llama-3.2-1b.json $OUT/call2-spread-$p-$tree.json \
      --repeats 3 2>&1 | grep -v -i warn | grep "^run\|phases\|Error\|error"
  done
done
