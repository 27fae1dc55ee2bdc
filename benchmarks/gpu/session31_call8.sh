#!/bin/bash
# Session 31, call 8 (H100; carry .whl/serve and .gpuwork/shared_models): issue 6's Llama-3.1-8B rows from
# today's main: 256 x (1024, 128), then random-1024-128 and random-1000-1000 with 1000 prompts each (the
# commands of session 16's table script, parts 8b and 8b-long).
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror|hf_|Traceback"; }
echo "== 8b 256 x (1024, 128)"; tp 120 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 128 \
  --num-prompts 256 --output-json $OUT/call8-8b-256.json
echo "== 8b random-1024-128"; tp 150 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 128 \
  --num-prompts 1000 --output-json $OUT/call8-8b-random-1024-128.json
echo "== 8b random-1000-1000"; tp 300 --model $M/llama-3.1-8b.json --input-len 1000 --output-len 1000 \
  --num-prompts 1000 --output-json $OUT/call8-8b-random-1000-1000.json
