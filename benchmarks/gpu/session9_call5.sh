#!/bin/bash
# Session 9, GPU call 5 (H100): after the review fixes (split-K workspace sized for 64 rows and never freed,
# shared-memory budget from the device, 64-bit partial offsets): the linears' tests, CUDA and piecewise graph
# tests, and the 1B decode step once more with everything on.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -v -p no:cacheprovider --durations=5"
(timeout 330 $P tests/test_skinny_linear.py tests/test_fused_ops.py > $OUT/tests-a.log 2>&1) &
(timeout 330 $P tests/test_cuda_graphs.py tests/test_piecewise_graphs.py -k "not smollm2" > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -1 $f; done
M=$PWD/.gpuwork/shared_models
timeout 90 python3 -m pagedllm.cli bench decode --load-format dummy --max-model-len 2048 --steps 32 --model $M/llama-3.2-1b.json \
  --batch-sizes 64 256 --context 512 --output-json $OUT/decode-1b-after-review.json 2>&1 | grep -v -i warn | tail -3
