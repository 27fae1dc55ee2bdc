#!/bin/bash
# Session 6: the no-compile tests with the prefill's TMA path (head dim 128) as well as pointers.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 240 python3 -m pytest -v -p no:cacheprovider tests/test_cuda_graphs.py tests/test_triton_attention.py \
  -k "compile" 2>&1 | grep -E "PASS|FAIL|^E  |passed|failed" | head -20
