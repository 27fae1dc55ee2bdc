#!/bin/bash
# Session 13, GPU call 1 (H100): the GPU tests of the kernels dab0d6b changed (fused_ops.rotate_halves,
# shared by the rotary kernel, qk_norm_rope and the skinny linear's rotated epilogue), which session 12
# only compiled locally for sm_90.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 540 python3 -m pytest -q -x tests/test_fused_ops.py tests/test_skinny_linear.py tests/test_qk_norm_rope.py \
  tests/test_triton_generation.py 2>&1 | tee $OUT/tests-call1.log | tail -5
