#!/bin/bash
# Session 25, call 1 (H100; carry .whl/serve and .gpuwork/shared_models):
# 1. the GPU tests that touch the KV cache's storage after session 25 made the CPU cache token-major
#    (block copies and swaps, swapping preemption between the head-major CUDA cache and the
#    token-major pinned swap space, CUDA graphs and cache sizing) and the step profile's own tests;
# 2. `bench decode --profile-dir` for the 1B and Qwen3-0.6B at 64 and 256 x 512: the steps' GPU time
#    against their floors and each step graph's kernels charged with the time they add to the chain
#    (pagedllm/bench/step_profile.py).
set -u -o pipefail
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv | tee $OUT/call1-gpu.txt
timeout 240 python3 -m pytest -q -p no:cacheprovider --durations=5 tests/test_block_ops.py tests/test_cuda_graphs.py \
  tests/test_step_profile.py tests/test_swap_and_abort.py 2>&1 | grep -v -i "warn" | tee $OUT/call1-tests.log
M=$PWD/.gpuwork/shared_models
for m in llama-3.2-1b qwen3-0.6b; do
  echo "== $m"
  timeout 150 python3 -m pagedllm.cli bench decode --model $M/$m.json --load-format dummy --max-model-len 2048 \
    --batch-sizes 64 256 --context 512 --steps 32 --profile-dir /tmp/prof/$m --output-json $OUT/call1-decode-$m.json \
    2>&1 | grep -v -i warn | grep -v "^written"
  for b in 64 256; do cp /tmp/prof/$m/decode-chain-b$b.json $OUT/call1-chain-$m-b$b.json; done
  cat /tmp/prof/$m/decode-chain-b*.txt | head -60
done
