#!/bin/bash
# Session 20, PREPARED FOR THE NEXT DEVICE SESSION, NOT RUN (H100; carry .whl/serve). First call:
#   1. tests/test_triton_generation.py alone, up to 540 s: whole models through the engine against the
#      reference backend. Calls 4-6 of session 20 ran out of time in it on cold Triton caches (2, 7 and
#      3 passed, none failed) after the prefill kernel gained its PLAIN variant.
# Second call (if time is left):
#   2. the rest of the GPU tests of session 20's change, then issue 5's whole table from main
#      (block size 16) with the PLAIN prefill variant and the general one's time on a chunked prefill.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -q -p no:cacheprovider --durations=8"
if [ "${1:-1}" = 1 ]; then
  timeout 540 $P tests/test_triton_generation.py > $OUT/next-tests-generation.log 2>&1
  grep -E "^E  |FAILED|passed|failed|s call" $OUT/next-tests-generation.log | head -20
else
  timeout 240 $P tests/test_triton_attention.py tests/test_kernel_warmup.py > $OUT/next-tests-attention.log 2>&1
  grep -E "^E  |FAILED|passed|failed" $OUT/next-tests-attention.log | head -10
  timeout 300 python3 -m pagedllm.cli bench kernels --block-sizes 16 --out $OUT/next-kernels-table.json 2>&1 \
    | grep -E "^(decode|prefill|mixed|device)|rror" | grep -v -i warn
fi
