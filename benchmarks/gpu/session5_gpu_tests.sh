#!/bin/bash
# Session 5, the kernel tests compiled on the H100 after decode.py's plan refactor and the
# do_not_specialize change (test_triton_attention, all of it), and the whole-model Triton-vs-reference
# tests (test_triton_generation), in two processes.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -q -p no:cacheprovider"
(timeout 480 $P tests/test_triton_attention.py tests/test_kernel_warmup.py > $OUT/tests-attention.log 2>&1) &
(timeout 480 $P tests/test_triton_generation.py --durations=5 > $OUT/tests-generation.log 2>&1) &
wait
for f in $OUT/tests-attention.log $OUT/tests-generation.log; do echo "== $f"; tail -3 $f; done
