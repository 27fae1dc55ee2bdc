#!/bin/bash
# Issue 6 (host overhead), GPU run 3 (H100): the async-scheduling tests on CUDA (fixed KV budget), then
# Qwen3-0.6B 256 x uniform 100-1024 in and out with async scheduling and without, and Llama-3.1-8B
# 256 x (1024, 128) with it (the time box leaves no room for its synchronous run), each after a short
# warm-up run per shape (compiles its Triton kernels).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
ROOT=$PWD
M=$ROOT/.gpuwork/shared_models
export PYTHONUNBUFFERED=1
cd $ROOT/.gpuwork/issue6 && export PYTHONPATH=/tmp/site:$PWD
timeout 110 python3 -m pytest -q -x -m "not slow" tests/test_async_scheduling.py 2>&1 | tail -3
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 | grep -v -i warn | grep -E "Throughput|oofline|rror"; }
Q="--model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 --num-prompts 256"
tp 30 --model $M/qwen3-0.6b.json --input-len 512 --output-len 16 --num-prompts 32
echo "== qwen3, async"; tp 45 $Q --output-json $OUT/throughput-qwen3-0.6b-async.json
echo "== qwen3, synchronous"; tp 45 $Q --no-async-scheduling --output-json $OUT/throughput-qwen3-0.6b-sync.json
L="--model $M/llama-3.1-8b.json --input-len 1024 --output-len 128 --num-prompts 256"
tp 35 --model $M/llama-3.1-8b.json --input-len 512 --output-len 8 --num-prompts 16
echo "== 8b, async"; tp 45 $L --output-json $OUT/throughput-llama-3.1-8b-async.json
