#!/bin/bash
# Session 15, GPU call 7 (H100): decode steps of 96 and 128 rows x 512 with the wide skinny plans up to 128
# rows (the default now) against cuBLAS above 64 rows (PAGEDLLM_SKINNY_MAX_ROWS=64), the Llama-3.2-1B and
# Qwen3-0.6B (two interleaved rounds) and Llama-3.1-8B at 128 x 1024 (one); then the linears' GPU tests.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 model=$2; shift 2; timeout 200 python3 -m pagedllm.cli bench decode --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | grep -v "^written" | tail -2; }
for r in 1 2; do
  for m in llama-3.2-1b qwen3-0.6b; do
    echo "== $m wide $r"; dec $m-wide-$r $m --batch-sizes 96 128 --context 512
    echo "== $m cublas $r"; PAGEDLLM_SKINNY_MAX_ROWS=64 dec $m-cublas-$r $m --batch-sizes 96 128 --context 512
  done
done
echo "== 8b wide"; dec 8b-wide llama-3.1-8b --batch-sizes 128 --context 1024
echo "== 8b cublas"; PAGEDLLM_SKINNY_MAX_ROWS=64 dec 8b-cublas llama-3.1-8b --batch-sizes 128 --context 1024
python3 benchmarks/gpu/merge_json.py $J $OUT/call7-decode.json
timeout 150 python3 -m pytest -q -x tests/test_skinny_linear.py tests/test_norm_hand_over.py 2>&1 | tail -3
