#!/bin/bash
# Session 20, prepared for the next device session; run as session 21's calls 1-2 (H100; carry
# .whl/serve; results in benchmarks/results/session21/call{1,2}-*). First call:
#   1. tests/test_triton_generation.py alone, up to 540 s: whole models through the engine against the
#      reference backend. Calls 4-6 of session 20 ran out of time in it on cold Triton caches (2, 7 and
#      3 passed, none failed) after the prefill kernel gained its PLAIN variant.
# Second call (`session20_next.sh 2`, ~8 min):
#   2. the rest of the GPU tests of session 20's change; the general prefill variant's time beside the
#      PLAIN one on the same plain prefills (it runs chunked prefills, prefix hits and steps with a short
#      prompt; session 20 measured only the PLAIN one); every plan of call 1 again on the PLAIN kernel
#      (163 registers now: 32-key tiles with three programs an SM may now pay on 64 x 1k, the one row
#      over 1.3x); issue 5's whole table from main at block size 16.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -q -p no:cacheprovider --durations=8"
if [ "${1:-1}" = 1 ]; then
  timeout 540 $P tests/test_triton_generation.py > $OUT/next-tests-generation.log 2>&1
  grep -E "^E  |FAILED|passed|failed|s call" $OUT/next-tests-generation.log | head -20
else
  timeout 200 $P tests/test_triton_attention.py tests/test_kernel_warmup.py > $OUT/next-tests-attention.log 2>&1
  grep -E "^E  |FAILED|passed|failed" $OUT/next-tests-attention.log | head -10
  timeout 60 python3 benchmarks/gpu/session20_prefill_occupancy.py $OUT/next-variants.json variants
  timeout 90 python3 benchmarks/gpu/session20_prefill_occupancy.py $OUT/next-plans.json all
  timeout 200 python3 -m pagedllm.cli bench kernels --block-sizes 16 --out $OUT/next-kernels-table.json 2>&1 \
    | grep -E "^(decode|prefill|mixed|device)|rror" | grep -v -i warn
fi
