#!/bin/bash
# Session 13, GPU call 9 (H100): main's whole-model GPU tests (tests/test_triton_generation.py, every test:
# float32 greedy equality with the reference backend, the bf16 logits, the fused launches and the hand-over).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 560 python3 -m pytest -q tests/test_triton_generation.py 2>&1 | tee $OUT/tests-call9.log | tail -4
