#!/bin/bash
# Session 14, GPU call 7 (H100): the bf16 whole-model test of fused launches again, its wrapper now passing
# keyword arguments on (call 6 failed it for qwen3: qk_norm_rope_inplace's kv_store keyword) and counting
# rotary's K/V store among the fused launches.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 400 python3 -m pytest -q tests/test_triton_generation.py -k bfloat16_logits_with_fused 2>&1 | tee $OUT/tests-call7.log | tail -4
