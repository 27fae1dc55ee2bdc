#!/bin/bash
# Session 31, call 10 (H100; carry .whl/serve): call 9 ran out of time in the middle of its test list
# (58 passed, none failed); the async-scheduling tests alone on the final tree.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 400 python3 -m pytest -q --tb=short tests/test_async_scheduling.py -k "not smollm" 2>&1 | tail -6
