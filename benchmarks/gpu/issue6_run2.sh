#!/bin/bash
# Issue 6, GPU run 2: fused-op and graph tests; Llama-3.2-1B decode steps and throughput with all peers;
# Qwen3-0.6B nano-vllm workload.
set -x
python3 -m pip install -q --no-index --no-deps --target /tmp/site ../.cache/gpu-wheels/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=shared_models
B="python3 -m pagedllm.cli bench"
D="--load-format dummy --max-model-len 2048"
timeout 90 python3 -m pytest -q -x tests/test_fused_ops.py tests/test_cuda_graphs.py 2>&1 | tail -4
timeout 100 $B decode --model $M/llama-3.2-1b.json $D --batch-sizes 64 256 --context 512 --steps 32 \
  --profile-dir $OUT --output-json $OUT/decode-llama-3.2-1b.json 2>&1 | grep -v -i warn | tail -4
timeout 60 $B decode --model $M/llama-3.2-1b.json $D --batch-sizes 256 --context 512 --steps 16 --enforce-eager \
  2>&1 | grep -v -i warn | tail -2
timeout 200 $B throughput --model $M/llama-3.2-1b.json $D --input-len 512 --output-len 128 --num-prompts 256 \
  --peers --output-json $OUT/throughput-llama-3.2-1b.json 2>&1 | grep -v -i warn | tail -5
timeout 60 $B throughput --model $M/llama-3.2-1b.json $D --input-len 512 --output-len 128 --num-prompts 256 \
  --kv-policy contiguous --output-json $OUT/throughput-llama-3.2-1b-contiguous.json 2>&1 | grep -v -i warn | tail -3
timeout 150 $B throughput --model $M/qwen3-0.6b.json $D --input-len 100-1024 --output-len 100-1024 \
  --num-prompts 256 --peers generate --output-json $OUT/throughput-qwen3-0.6b.json 2>&1 | grep -v -i warn | tail -4
