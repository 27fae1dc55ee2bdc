#!/bin/bash
# Session 5: does a larger prefill chunk budget (max_num_batched_tokens 16384, vLLM V1's offline default
# on large GPUs, against our 8192) lift the prefill-bound Llama-3.1-8B 256 x (1024, 128) over 60% of its
# roofline, and what does it do to the 1B and Qwen3 workloads? Each shape warmed by a short run first.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror"; }
for model in llama-3.1-8b llama-3.2-1b qwen3-0.6b; do
  case $model in
    llama-3.1-8b) W="--input-len 1024 --output-len 128 --num-prompts 256";;
    llama-3.2-1b) W="--input-len 512 --output-len 128 --num-prompts 256";;
    qwen3-0.6b) W="--input-len 100-1024 --output-len 100-1024 --num-prompts 256";;
  esac
  tp 40 --model $M/$model.json --input-len 512 --output-len 8 --num-prompts 64 > /dev/null
  for mbt in 8192 16384; do
    echo "== $model, max_num_batched_tokens $mbt"
    tp 90 --model $M/$model.json $W --max-num-batched-tokens $mbt --output-json $OUT/throughput-$model-mbt$mbt.json
  done
done
