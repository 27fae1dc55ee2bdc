#!/bin/bash
# Session 28, call 5 (H100; carry .whl/serve): the GPU tests of the committed 129-256-row rule: the linears
# and the norm hand-over (200 rows among them), then generation in bf16 and the CUDA graphs.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_linear.py tests/test_norm_hand_over.py 2>&1 \
  | grep -v -i warn | tail -8 | tee $OUT/call5-tests-linears.log
timeout 330 python3 -m pytest -q -p no:cacheprovider tests/test_triton_generation.py tests/test_cuda_graphs.py \
  -k "not identical_to_reference" 2>&1 | grep -v -i warn | tail -8 | tee $OUT/call5-tests-generation.log
