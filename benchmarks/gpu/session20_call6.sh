#!/bin/bash
# Session 20, GPU call 6 (H100; carry .whl/serve): the GPU tests after the prefill variants went from
# eight to four (one PLAIN variant instead of one per fact): generation against the reference backend
# alone first (calls 4-5 ran out of time in it while the warm-up compiled eight), then the new prefill
# and backend tests.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -q -p no:cacheprovider --durations=6"
timeout 200 $P tests/test_triton_generation.py > $OUT/call6-tests-generation.log 2>&1
timeout 100 $P tests/test_triton_attention.py -k "facts or finite or backend or hold" > $OUT/call6-tests-attention.log 2>&1
for f in $OUT/call6-tests-*.log; do
  echo "== $f"; grep -E "^E  |FAILED|passed|failed|s call" $f | head -14; tail -1 $f
done
