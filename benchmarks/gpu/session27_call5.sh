#!/bin/bash
# Session 27, call 5 (H100; carry .whl/serve): why the 1B's step is slower with the rotated qkv launch
# storing K/V (session27_store_kv_probe.py), and the skinny linear's rotated and K/V-store tests on the GPU.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 240 python3 benchmarks/gpu/session27_store_kv_probe.py $OUT/call5-store-kv-probe.json 2>&1 | grep -v -i warn | tee $OUT/call5.log
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_linear.py -k "rotated or stores or rotary" 2>&1 \
  | grep -v -i warn | tail -4 | tee $OUT/call5-tests.log
