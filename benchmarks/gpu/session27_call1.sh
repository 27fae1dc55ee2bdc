#!/bin/bash
# Session 27, call 1 (H100; carry .whl/serve): Qwen3-0.6B's and the 1B's qkv at 64 rows with tiles of
# whole heads (rotated, so an epilogue could norm each head and store K/V) against the engine's launches.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 500 python3 benchmarks/gpu/session27_whole_head_qkv.py $OUT/call1-whole-head-qkv.json 2>&1 | grep -v -i warn | tee $OUT/call1.log
