#!/bin/bash
# Session 18, for a device session's first call (H100; session 19's call 1 ran it): the GPU tests of
# what session 18 changed without a GPU (decode attention carries its block ids by default for one KV
# head of <= 64 dims in one split). Group c first and alone (150 s at most), then a and b side by side
# on the one GPU (420 s at most each; session 16's attention tests alone ran out of 200 s):
#   a: the attention kernels compiled, the carried-ids tests among them;
#   b: the kernel warm-up, the CUDA and piecewise graphs;
#   c: whole models through the engine against the reference backend, with the new 40-sequence test of
#      the carried region (first, alone: see below).
# Carry .whl/serve. Call 2's JSON shows the event-timed copy bandwidth of the floors.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="timeout 420 python3 -m pytest -q -p no:cacheprovider --durations=6"
# NOTE: session 19 ran the three groups side by side: a and b passed (375 s and 161 s) and c ran only 8
# tests in its 480 s; alone it took 77 s. So c runs first and alone, then a and b side by side.
timeout 150 python3 -m pytest -q -p no:cacheprovider --durations=6 tests/test_triton_generation.py > $OUT/tests-c.log 2>&1
($P tests/test_triton_attention.py > $OUT/tests-a.log 2>&1) &
($P tests/test_kernel_warmup.py tests/test_cuda_graphs.py tests/test_piecewise_graphs.py > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log $OUT/tests-c.log; do
  echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -2 $f
done
