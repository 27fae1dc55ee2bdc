#!/bin/bash
# Session 16, GPU calls 4-7 (H100): issue 6's tables again from main at the session's end, one part per call,
# each part's rows from one process run after another on one machine, peers after pagedllm freed its memory.
#   1b:      the 1B workload with HF generate and generate_batch, and --kv-policy contiguous; then every decode
#            step of the 1.3x table (1B and Qwen3-0.6B at 64/256 x 512, the 8B at 64/256 x 1024)
#   8b:      the 8B 256 x (1024, 128) workload with HF generate (padded batches of 128) and generate_batch
#   8b-long: the 8B random-1024-128 and random-1000-1000, 1000 prompts each
#   qwen3:   the Qwen3-0.6B workload with HF generate (one padded batch of 256: out of memory in call 7)
#   qwen3-128: the same with HF generate in padded batches of 128 (call 8)
# Usage: bash benchmarks/gpu/session16_table.sh PART
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror|hf_|Traceback"; }
dec() { local name=$1 model=$2; shift 2; timeout 150 python3 -m pagedllm.cli bench decode --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $OUT/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn \
  | grep -v "^written"; }
case $1 in
1b)
  echo "== warm-up"; tp 150 --model $M/llama-3.2-1b.json --input-len 512 --output-len 8 --num-prompts 64
  echo "== 1b with peers"; tp 300 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
    --peers generate generate_batch --output-json $OUT/table-llama-3.2-1b.json
  echo "== 1b contiguous"; tp 150 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
    --kv-policy contiguous --output-json $OUT/table-llama-3.2-1b-contiguous.json
  echo "== decode 1b"; dec decode-llama-3.2-1b llama-3.2-1b --batch-sizes 64 256 --context 512
  echo "== decode qwen3"; dec decode-qwen3-0.6b qwen3-0.6b --batch-sizes 64 256 --context 512
  echo "== decode 8b"; dec decode-llama-3.1-8b llama-3.1-8b --batch-sizes 64 256 --context 1024 ;;
8b)
  echo "== warm-up"; tp 150 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 8 --num-prompts 64
  echo "== 8b with peers"; tp 450 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 128 --num-prompts 256 \
    --peers generate generate_batch --peer-batch-size 128 --output-json $OUT/table-llama-3.1-8b.json ;;
8b-long)
  echo "== warm-up"; tp 150 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 8 --num-prompts 64
  echo "== 8b random-1024-128"; tp 150 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 128 \
    --num-prompts 1000 --output-json $OUT/table-llama-3.1-8b-random-1024-128.json
  echo "== 8b random-1000-1000"; tp 330 --model $M/llama-3.1-8b.json --input-len 1000 --output-len 1000 \
    --num-prompts 1000 --output-json $OUT/table-llama-3.1-8b-random-1000-1000.json ;;
qwen3)
  echo "== warm-up"; tp 150 --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 --num-prompts 64 \
    --workload-seed 7
  echo "== qwen3 with HF generate"; tp 500 --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 \
    --num-prompts 256 --peers generate --peer-batch-size 256 --output-json $OUT/table-qwen3-0.6b.json ;;
qwen3-128)
  echo "== warm-up"; tp 150 --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 --num-prompts 64 \
    --workload-seed 7
  echo "== qwen3 with HF generate, batches of 128"; tp 540 --model $M/qwen3-0.6b.json --input-len 100-1024 \
    --output-len 100-1024 --num-prompts 256 --peers generate --peer-batch-size 128 --output-json $OUT/table-qwen3-0.6b.json ;;
*) echo "unknown part $1"; exit 2 ;;
esac
