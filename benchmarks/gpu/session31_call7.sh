#!/bin/bash
# Session 31, call 7 (H100; carry .whl/serve and .gpuwork/shared_models): issue 6's Llama-3.2-1B table
# again from today's main (admissions scheduled ahead, the decode step's host time halved): pagedllm, HF
# generate and generate_batch on the same prompts in one process, then pagedllm --kv-policy contiguous;
# the commands are session 25's call 5.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror|hf_|Traceback"; }
echo "== 1b with peers"; tp 360 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
  --peers generate generate_batch --output-json $OUT/call7-table-llama-3.2-1b.json
echo "== 1b contiguous"; tp 120 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
  --kv-policy contiguous --output-json $OUT/call7-table-llama-3.2-1b-contiguous.json
