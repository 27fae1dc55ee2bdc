#!/bin/bash
# GPU run (H100): decode steps of the Llama-3.2-1B shape (offline: outputs only for finished requests),
# then issue 7's serving benchmark: `pagedllm serve` + `bench serve` at several rates against offline
# LLM.generate on the same prompts (dummy weights; streamed chunks carry token ids).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
B="python3 -m pagedllm.cli bench"
D="--load-format dummy --max-model-len 2048"
timeout 90 $B decode --model $M/llama-3.2-1b.json $D --batch-sizes 64 256 --context 512 --steps 16 \
  --output-json $OUT/decode-llama-3.2-1b.json 2>&1 | grep -v -i warn | tail -4
cd benchmarks && timeout 400 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
  --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 \
  --request-rates 16 32 64 inf --name serve-gpu-llama-3.2-1b 2>&1 | grep -v -i warn | tail -14
cp results/serve-gpu-llama-3.2-1b.json $OUT/ 2>/dev/null; true
