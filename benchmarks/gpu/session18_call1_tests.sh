#!/bin/bash
# Session 18, prepared for the next device session's FIRST call (H100), NOT RUN: the GPU tests of what
# session 18 changed without a GPU. Decode attention carries its block ids by default for one KV head of
# <= 64 dims in one split; the floors' ceilings are timed with CUDA events.
#   a: the attention kernels compiled (the carried-ids tests and the rest), the kernel warm-up, and the
#      CUDA and piecewise graphs;
#   b: whole models through the engine against the reference backend, the new 40-sequence test of the
#      carried region included;
#   c: one `bench decode` run of the 1B at 64 rows, whose floor now comes from the event-timed copy.
# a and b run side by side, ~420 s at most. Carry .whl/serve and .gpuwork/shared_models.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -q -p no:cacheprovider --durations=6"
(timeout 400 $P tests/test_triton_attention.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py \
  tests/test_piecewise_graphs.py > $OUT/tests-a.log 2>&1) &
(timeout 400 $P tests/test_triton_generation.py > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -2 $f; done
echo "== bench decode (the event-timed floor)"
timeout 120 python3 -m pagedllm.cli bench decode --load-format dummy --max-model-len 2048 --steps 32 \
  --model .gpuwork/shared_models/llama-3.2-1b.json --batch-sizes 64 --context 512 \
  --output-json $OUT/call1-decode-1b.json 2>&1 | grep -v -i warn | tail -3
python3 -c "import json; r = json.load(open('$OUT/call1-decode-1b.json'))['rows'][0]; print('copy TB/s', r['copy_bytes_per_s'] / 1e12)"
