#!/bin/bash
# Session 24, call 2 (H100; carry .whl/serve and .gpuwork/shared_models): decode attention over a
# head-major KV cache (session24_kv_layout.py), then whole decode steps of the 1B and Qwen3-0.6B at 64
# and 256 x 512 with main's cache and a head-major one (session24_decode.py), two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 200 python3 benchmarks/gpu/session24_kv_layout.py $OUT/call2-kv-layout.json 2>&1 | grep -v -i warn
bash benchmarks/gpu/session24_steps.sh $OUT/call2-decode.json S24_KV main head
