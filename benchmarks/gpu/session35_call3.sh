#!/bin/bash
# Session 35, call 3 (H100; carry .whl/serve): the 1B's 256-row decode step reads its K/V at ~0.9 of copy
# bandwidth whatever the launch; session35_kv_read_floor.py times the same bytes read by attention's
# loads alone and as one contiguous range, blocks in order and shuffled. Then the decode attention tests.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
timeout 300 python3 benchmarks/gpu/session35_kv_read_floor.py "$OUT/call3-kv-read-floor.json" 2>&1 | tee "$OUT/call3-kv-read-floor.log"
