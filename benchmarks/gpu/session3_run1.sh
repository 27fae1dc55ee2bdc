#!/bin/bash
# GPU run (H100): the CUDA paths' tests after the host-overhead changes (vectorized batch inputs, outputs
# built only for finished requests), the Llama-3.2-1B throughput and decode steps again, and the
# parallel-beam KV memory figures on the llama-2-7b shape. Run from the repo root with
# .gpuwork/shared_models (a copy of ../shared/models) and the carried wheels.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
B="python3 -m pagedllm.cli bench"
D="--load-format dummy --max-model-len 2048"
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 170 python3 -m pytest -q -x -p no:cacheprovider tests/test_triton_generation.py tests/test_cuda_graphs.py \
  tests/test_fused_ops.py tests/test_triton_attention.py 2>&1 | tail -3
timeout 120 $B throughput --model $M/llama-3.2-1b.json $D --input-len 512 --output-len 128 --num-prompts 256 \
  --output-json $OUT/throughput-llama-3.2-1b.json 2>&1 | grep -v -i warn | tail -6
timeout 60 $B decode --model $M/llama-3.2-1b.json $D --batch-sizes 64 256 --context 512 --steps 16 \
  --output-json $OUT/decode-llama-3.2-1b.json 2>&1 | grep -v -i warn | tail -6
cd benchmarks && timeout 200 python3 sharing_memory.py --model $M/llama-2-7b.json --load-format dummy \
  --dtype bfloat16 --num-requests 16 --name sharing-llama-2-7b-h100 2>&1 | grep -v -i warn | tail -8
cp results/sharing-llama-2-7b-h100.json $OUT/ 2>/dev/null; true
