#!/bin/bash
# Session 14, GPU call 4 (H100): decode attention launches for the Qwen3-0.6B layout at 64 x 528/544
# (benchmarks/gpu/session14_qwen3_attention.py), then the K/V-store test's GPU cases (fixed after call 3).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 60 python3 -m pytest -q tests/test_kv_store_in_rotary.py 2>&1 | tee $OUT/tests-call4.log | tail -2
timeout 480 python3 benchmarks/gpu/session14_qwen3_attention.py --out $OUT/qwen3-attention.json 2>&1 | tail -120
