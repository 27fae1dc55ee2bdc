#!/bin/bash
# Session 14, GPU call 6 (H100): the whole-model GPU tests (tests/test_triton_generation.py: float32 greedy
# equality with the reference backend, the bf16 logits, the fused launches, the hand-over) on the K/V
# stores of calls 3 and 5.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 560 python3 -m pytest -q tests/test_triton_generation.py 2>&1 | tee $OUT/tests-call6.log | tail -4
