#!/bin/bash
# Session 18, prepared for the next device session's FIRST call (H100), NOT RUN: the GPU tests of what
# session 18 changed without a GPU (decode attention carries its block ids by default for one KV head of
# <= 64 dims in one split). Three groups side by side on the one GPU, 480 s at most each (session 16's
# attention tests alone ran out of 200 s):
#   a: the attention kernels compiled, the carried-ids tests among them;
#   b: the kernel warm-up, the CUDA and piecewise graphs;
#   c: whole models through the engine against the reference backend, with the new 40-sequence test of
#      the carried region.
# Carry .whl/serve. Call 2's JSON shows the event-timed copy bandwidth of the floors.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="timeout 480 python3 -m pytest -q -p no:cacheprovider --durations=6"
($P tests/test_triton_attention.py > $OUT/tests-a.log 2>&1) &
($P tests/test_kernel_warmup.py tests/test_cuda_graphs.py tests/test_piecewise_graphs.py > $OUT/tests-b.log 2>&1) &
($P tests/test_triton_generation.py > $OUT/tests-c.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log $OUT/tests-c.log; do
  echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -2 $f
done
