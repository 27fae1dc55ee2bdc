#!/bin/bash
# Session 15, GPU call 3 (H100): decode steps of 128 and 256 rows x 512, two interleaved rounds:
# wide plans with the 128-row tiles' epilogue inputs loaded after the loop (the default now), the same
# loaded before it (S15_EARLY_EPILOGUE), the 1B without rotary in the wide qkv (S15_NO_WIDE_ROPE), and
# cuBLAS above 64 rows (PAGEDLLM_SKINNY_MAX_ROWS=64); then each compiled skinny kernel's spills.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 model=$2; shift 2; timeout 200 python3 benchmarks/gpu/session15_decode.py --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json --batch-sizes 128 256 \
  --context 512 2>&1 | grep -v -i warn | grep -v "^written" | tail -2; }
for r in 1 2; do
  echo "== 1b late $r"; dec 1b-late-$r llama-3.2-1b
  echo "== 1b early $r"; S15_EARLY_EPILOGUE=1 dec 1b-early-$r llama-3.2-1b
  echo "== 1b norope $r"; S15_NO_WIDE_ROPE=1 dec 1b-norope-$r llama-3.2-1b
  echo "== 1b cublas $r"; PAGEDLLM_SKINNY_MAX_ROWS=64 dec 1b-cublas-$r llama-3.2-1b
  echo "== qwen3 late $r"; dec qwen3-late-$r qwen3-0.6b
  echo "== qwen3 early $r"; S15_EARLY_EPILOGUE=1 dec qwen3-early-$r qwen3-0.6b
  echo "== qwen3 cublas $r"; PAGEDLLM_SKINNY_MAX_ROWS=64 dec qwen3-cublas-$r qwen3-0.6b
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call3-decode.json
echo "== spills late"; S15_SPILLS=1 timeout 100 python3 benchmarks/gpu/session15_decode.py --load-format dummy \
  --max-model-len 2048 --steps 4 --model $M/llama-3.2-1b.json --batch-sizes 256 --context 512 2>&1 | grep "skinny kernel"
echo "== spills early"; S15_EARLY_EPILOGUE=1 S15_SPILLS=1 timeout 100 python3 benchmarks/gpu/session15_decode.py --load-format dummy \
  --max-model-len 2048 --steps 4 --model $M/llama-3.2-1b.json --batch-sizes 256 --context 512 2>&1 | grep "skinny kernel"
