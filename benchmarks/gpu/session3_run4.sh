#!/bin/bash
# GPU run (H100): the server again on the Llama-3.2-1B shape after the API-key middleware fix (A: the
# default h11 + asyncio), then with httptools + uvloop installed (B: uvicorn picks them up by itself).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
S="python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128"
cd benchmarks
timeout 200 $S --request-rates 64 inf --name serve-gpu-llama-3.2-1b-h11 2>&1 | grep -v -i warn | tail -5
cp results/serve-gpu-llama-3.2-1b-h11.json $OUT/ 2>/dev/null
python3 -m pip install -q --no-index --no-deps --target /tmp/site ../.whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
timeout 200 $S --request-rates 16 32 64 inf --name serve-gpu-llama-3.2-1b 2>&1 | grep -v -i warn | tail -8
cp results/serve-gpu-llama-3.2-1b.json $OUT/ 2>/dev/null; true
