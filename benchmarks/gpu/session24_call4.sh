#!/bin/bash
# Session 24, call 4 (H100; carry .whl/serve and .gpuwork/shared_models), on the head-major cache:
# - the memory-sizing test that call 3's parallel run (-n 8: other workers' GPU memory) failed, alone;
# - issue 5's decode rows where the Qwen layout misses (64 and 256 x 4k and 16k, Llama beside it) and
#   two prefill rows, `bench kernels` as the issue's table runs it;
# - whole decode steps of the 1B and Qwen3-0.6B at 64 and 256 x 512, the engine's head-major cache
#   against the token-major one before (session24_decode.py S24_KV=token), two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py -k sized_by_profiling 2>&1 | tail -2
timeout 200 python3 -m pagedllm.cli bench kernels --heads qwen llama --batches 64 256 --contexts 4096 16384 \
  --block-sizes 16 --prefill-shapes 16x1024 64x1024 --out $OUT/call4-kernels.json 2>&1 | grep -v -i warn
bash benchmarks/gpu/session24_steps.sh $OUT/call4-decode.json S24_KV head token
