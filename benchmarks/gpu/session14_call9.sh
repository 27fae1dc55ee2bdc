#!/bin/bash
# Session 14, GPU call 9 (H100): one inverse-RMS helper (fused_ops.inverse_rms) for the three kernels that
# normalize (RMSNorm, qk_norm_rope, the skinny consumer of a handed-over norm): their GPU tests.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 400 python3 -m pytest -q tests/test_fused_ops.py tests/test_qk_norm_rope.py tests/test_norm_hand_over.py \
  tests/test_skinny_linear.py tests/test_kv_store_in_rotary.py 2>&1 | tee $OUT/tests-call9.log | tail -3
