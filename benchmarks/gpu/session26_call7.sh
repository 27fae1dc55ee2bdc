#!/bin/bash
# Session 26, call 7 (H100; carry .whl/serve): the generation and CUDA-graph GPU tests alone, which calls
# 5-6 did not reach in their time limit (TMA loads for the 64-row plans).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 280 python3 -m pytest -q -p no:cacheprovider tests/test_triton_generation.py tests/test_cuda_graphs.py \
  -k "not identical_to_reference" 2>&1 | grep -v -i warn | tail -5 | tee $OUT/call7-tests.log
