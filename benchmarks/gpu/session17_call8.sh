#!/bin/bash
# Session 17, GPU call 8 (H100), PREPARED, NOT RUN (no device was lent after call 6): the prefill kernel's
# grid with the KV heads fastest (.gpuwork/s17/heads, S17_HEADS_FIRST=1), against main's (tiles fastest).
# Main's order ends a launch with one head's long-to-short run of its last sequence, whose long tiles
# (1,024 keys at 16 x 1k) can start a few us before the rest of the GPU runs dry; with the heads fastest
# the last ~264 programs (two an SM) are every head's shortest tiles. The prefill rows,
# `bench kernels` (the decode part cut to one small row), two interleaved rounds of the two trees.
# The trees, from the checkout's root:
#   mkdir -p .gpuwork/s17/start .gpuwork/s17/heads
#   git archive 4d664d7 pagedllm | tar -x -C .gpuwork/s17/start
#   git archive 4d664d7 pagedllm | tar -x -C .gpuwork/s17/heads
#   (cd .gpuwork/s17/heads && patch -p0 < ../../../benchmarks/results/session17/prefill-heads-first-experiment.diff)
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
S=$PWD/.gpuwork/s17; B=$PWD/benchmarks/bench_kernels.py
for r in 1 2; do
  for v in start heads; do
    tree=$S/$([ $v = start ] && echo start || echo heads)
    echo "== prefill $v round $r"
    (cd $tree && S17_HEADS_FIRST=$([ $v = heads ] && echo 1 || echo 0) PYTHONPATH=/tmp/site:$tree timeout 240 \
      python3 $B --block-sizes 16 --batches 1 --contexts 128 --out $OUT/call8-prefill-$v-$r.json 2>&1 \
      | grep -E "prefill|device" | grep -v -i warn)
  done
done
