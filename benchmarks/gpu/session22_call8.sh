#!/bin/bash
# Session 22, call 8 (H100; carry .whl/serve): issue 5's prefill rows from main after the one-compare
# diagonal mask and the reciprocal epilogue (decode rows cut to one: no decode code changed), with the
# prefill graphs replayed in turn with SDPA's; then issue 5's GPU attention and warm-up tests.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 150 python3 -m pagedllm.cli bench kernels --block-sizes 16 --batches 1 --contexts 128 \
  --out $OUT/call8-kernels-prefill.json 2>&1 | grep -E "^(prefill|device)" | cut -c1-200
timeout 430 python3 -m pytest -q -p no:cacheprovider --durations=5 tests/test_triton_attention.py tests/test_kernel_warmup.py \
  > $OUT/call8-tests.log 2>&1
grep -E "^E  |FAILED|passed|failed" $OUT/call8-tests.log | head -12
