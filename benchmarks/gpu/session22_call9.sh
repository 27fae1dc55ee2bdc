#!/bin/bash
# Session 22, call 9 (H100; carry .whl/serve): the GPU generation tests (whole models through the engine,
# Triton backend against the reference, float32 and bf16) after the prefill kernel's one-compare mask
# and reciprocal epilogue.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 550 python3 -m pytest -q -p no:cacheprovider --durations=8 tests/test_triton_generation.py \
  > $OUT/call9-tests-generation.log 2>&1
grep -E "^E  |FAILED|passed|failed|s call" $OUT/call9-tests-generation.log | head -20
