#!/bin/bash
# Issue 6 (host overhead), GPU run 1 (H100): the async-scheduling and CUDA-graph tests on CUDA, then the
# Llama-3.2-1B 256 x (512, 128) throughput of this branch with async scheduling (its CUDA default),
# of this branch without it, and of main (the repo root), in one process kind after one warm-up run
# that compiles the Triton kernels. Run from the repo root with the branch copied to .gpuwork/issue6.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
ROOT=$PWD
M=$ROOT/.gpuwork/shared_models
export PYTHONUNBUFFERED=1
W="--model $M/llama-3.2-1b.json --load-format dummy --max-model-len 2048 --input-len 512"
tp() { timeout 75 python3 -m pagedllm.cli bench throughput $W "$@" 2>&1 | grep -v -i warn | grep -E "Throughput|oofline|rror"; }
cd $ROOT/.gpuwork/issue6 && export PYTHONPATH=/tmp/site:$PWD
tp --output-len 16 --num-prompts 64  # warm-up: compiles the kernels outside the timed runs
echo "== branch, async scheduling"; tp --output-len 128 --num-prompts 256 --output-json $OUT/throughput-async.json
echo "== branch, synchronous"; tp --output-len 128 --num-prompts 256 --no-async-scheduling --output-json $OUT/throughput-sync.json
cd $ROOT && export PYTHONPATH=/tmp/site:$ROOT
echo "== main"; tp --output-len 128 --num-prompts 256 --output-json $OUT/throughput-main.json
cd $ROOT/.gpuwork/issue6 && export PYTHONPATH=/tmp/site:$PWD
timeout 100 python3 -m pytest -q -x -m "not slow" tests/test_cuda_graphs.py tests/test_async_scheduling.py 2>&1 | tail -4
