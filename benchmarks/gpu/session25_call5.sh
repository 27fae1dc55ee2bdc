#!/bin/bash
# Session 25, call 5 (H100; carry .whl/serve and .gpuwork/shared_models): issue 6's Llama-3.2-1B table
# again from today's main (session 16's was host-timed, and its 67.4% of roofline was estimated at
# 62.7-66.5% with the event-timed copy bandwidth): pagedllm, HF generate and generate_batch on the same
# prompts in one process, then pagedllm --kv-policy contiguous; the commands are session16_table.sh's.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror|hf_|Traceback"; }
echo "== warm-up"; tp 120 --model $M/llama-3.2-1b.json --input-len 512 --output-len 8 --num-prompts 64
echo "== 1b with peers"; tp 330 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
  --peers generate generate_batch --output-json $OUT/call5-table-llama-3.2-1b.json
echo "== 1b contiguous"; tp 120 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
  --kv-policy contiguous --output-json $OUT/call5-table-llama-3.2-1b-contiguous.json
