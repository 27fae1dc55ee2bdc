#!/bin/bash
# Issue 6, GPU run 1: correctness (Triton + graphs through the engine), decode step profile, 1B throughput.
# Run from the repo root on the GPU machine with the shared model configs copied to ./shared_models.
set -x
python3 -m pip install -q --no-index --no-deps --target /tmp/site ../.cache/gpu-wheels/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv
M=shared_models
timeout 150 python3 -m pytest -q -x tests/test_cuda_graphs.py tests/test_triton_generation.py 2>&1 | tail -15
timeout 120 python3 -m pagedllm.cli bench decode --model $M/llama-3.2-1b.json --load-format dummy \
  --max-model-len 2048 --batch-sizes 64 256 --context 512 --steps 32 --profile-dir $OUT \
  --output-json $OUT/decode-llama-3.2-1b.json 2>&1 | grep -v Warning | tail -8
timeout 250 python3 -m pagedllm.cli bench throughput --model $M/llama-3.2-1b.json --load-format dummy \
  --max-model-len 2048 --dataset random --input-len 512 --output-len 128 --num-prompts 256 \
  --peers generate --output-json $OUT/throughput-llama-3.2-1b.json 2>&1 | grep -v Warning | tail -8
