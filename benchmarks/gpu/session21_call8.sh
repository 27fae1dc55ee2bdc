#!/bin/bash
# Session 21, call 8 (H100; carry .whl/serve): the Qwen2.5-0.5B layout's decode rows with the joint
# one-split plan (choose_decode_plan from 4k tokens where nothing splits; 128-token tiles, 3 stages),
# then issue 5's GPU attention and warm-up tests in full (session 20's change and this one's).
# The plan was taken back after this call: rerun on a tree with
# benchmarks/results/session21/decode-joint-single-split.diff applied.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 120 python3 -m pagedllm.cli bench kernels --heads qwen --batches 64 256 --contexts 1024 4096 16384 \
  --block-sizes 16 --prefill-shapes 16x1024 --out $OUT/call8-qwen-decode.json 2>&1 | grep -E "^decode " | cut -c1-150
timeout 420 python3 -m pytest -q -p no:cacheprovider --durations=5 tests/test_triton_attention.py tests/test_kernel_warmup.py \
  > $OUT/call8-tests.log 2>&1
grep -E "^E  |FAILED|passed|failed" $OUT/call8-tests.log | head -12
