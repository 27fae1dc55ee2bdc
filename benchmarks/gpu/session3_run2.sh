#!/bin/bash
# GPU run (H100): the 1B throughput twice in a row (a cold Triton cache compiles kernels inside the
# timed region; the second process finds them on disk), then issue 7's serving benchmark on the
# Llama-3.2-1B shape: `pagedllm serve` + `bench serve` at several rates vs offline on the same prompts.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
B="python3 -m pagedllm.cli bench"
D="--load-format dummy --max-model-len 2048"
for i in 1 2; do
  timeout 120 $B throughput --model $M/llama-3.2-1b.json $D --input-len 512 --output-len 128 --num-prompts 256 \
    --output-json $OUT/throughput-llama-3.2-1b-$i.json 2>&1 | grep -v -i warn | grep -E "Throughput|Roofline"
done
cd benchmarks && timeout 330 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
  --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 \
  --request-rates 16 32 64 inf --name serve-gpu-llama-3.2-1b 2>&1 | grep -v -i warn | tail -14
cp results/serve-gpu-llama-3.2-1b.json $OUT/ 2>/dev/null; true
