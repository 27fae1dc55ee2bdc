#!/bin/bash
# Session 7, GPU call 5 (H100): the Llama-3.1-8B 256 x (1024, 128) table: pagedllm with HF generate (padded
# batches of 128: 256 did not fit beside the cache in session 3) and HF generate_batch (paged|sdpa) in the
# same process; then random-1024-128 with 1000 prompts. A warm-up run of the shapes first.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror|hf_|written|Traceback" ; }
echo "== warm-up"; tp 150 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 8 --num-prompts 64
echo "== 8B with peers"; tp 330 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 128 --num-prompts 256 \
  --peers generate generate_batch --peer-batch-size 128 --output-json $OUT/table-llama-3.1-8b.json
echo "== 8B random-1024-128, 1000 prompts"; tp 150 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 128 \
  --num-prompts 1000 --output-json $OUT/table-llama-3.1-8b-random-1024-128.json
