#!/bin/bash
# Session 8, GPU call 7 (H100): the piecewise graph and CUDA graph tests after ending a failed capture on its
# own stream.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 300 python3 -m pytest -v -p no:cacheprovider --durations=8 tests/test_piecewise_graphs.py tests/test_cuda_graphs.py \
  -k "not smollm2" > $OUT/tests.log 2>&1
echo "== tests"; grep -E "^E  |FAILED|PASSED|passed|failed" $OUT/tests.log | head -30; tail -1 $OUT/tests.log
