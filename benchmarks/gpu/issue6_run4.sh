#!/bin/bash
# Issue 6, GPU run 4: Qwen3-0.6B nano-vllm workload (full log), 1B decode eager vs graphs.
python3 -m pip install -q --no-index --no-deps --target /tmp/site ../.cache/gpu-wheels/*.whl 2>/dev/null
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=shared_models
B="python3 -m pagedllm.cli bench"
D="--load-format dummy --max-model-len 2048"
timeout 200 $B throughput --model $M/qwen3-0.6b.json $D --input-len 100-1024 --output-len 100-1024 \
  --num-prompts 256 --peers generate --peer-batch-size 64 --output-json $OUT/throughput-qwen3-0.6b.json \
  > $OUT/qwen3.log 2>&1; echo "rc $?"; grep -v -i warn $OUT/qwen3.log | tail -8
timeout 60 $B decode --model $M/llama-3.2-1b.json $D --batch-sizes 64 256 --context 512 --steps 16 --enforce-eager \
  --output-json $OUT/decode-llama-3.2-1b-eager.json 2>&1 | grep -v -i warn | tail -3
