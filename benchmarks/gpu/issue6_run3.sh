#!/bin/bash
# Issue 6, GPU run 3: decode steps (1B, 8B) with profiles; Qwen3-0.6B nano-vllm workload; Llama-3.1-8B
# 256 x (1024, 128) with HF generate; random-1024-128 with 1000 prompts.
python3 -m pip install -q --no-index --no-deps --target /tmp/site ../.cache/gpu-wheels/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=shared_models
B="python3 -m pagedllm.cli bench"
D="--load-format dummy --max-model-len 2048"
run() { echo "+ $*"; timeout "$@" 2>&1 | grep -v -i -E "warn|^ *warnings" | tail -6; }
run 100 $B decode --model $M/llama-3.2-1b.json $D --batch-sizes 64 256 --context 512 --steps 32 \
  --profile-dir $OUT --output-json $OUT/decode-llama-3.2-1b.json
run 150 $B throughput --model $M/qwen3-0.6b.json $D --input-len 100-1024 --output-len 100-1024 \
  --num-prompts 256 --peers generate --output-json $OUT/throughput-qwen3-0.6b.json
run 150 $B throughput --model $M/llama-3.1-8b.json $D --input-len 1024 --output-len 128 --num-prompts 256 \
  --peers generate --peer-batch-size 128 --output-json $OUT/throughput-llama-3.1-8b.json
run 100 $B decode --model $M/llama-3.1-8b.json $D --batch-sizes 64 256 --context 1024 --steps 16 \
  --output-json $OUT/decode-llama-3.1-8b.json
run 120 $B throughput --model $M/llama-3.1-8b.json $D --input-len 1024 --output-len 128 --num-prompts 1000 \
  --output-json $OUT/throughput-llama-3.1-8b-random-1024-128.json
