#!/bin/bash
# Session 15, GPU call 10 (H100): the wide plans' rule redone from the 128-row sweeps (128-row tiles: 8
# warps, 128-deep input tiles; 64-row tiles: five stages; the epilogue's inputs loaded after the loop).
# Forms at 128 rows (session15_forms.py) for the 1B, Qwen3-0.6B and 8B; then decode steps against cuBLAS
# above 64 rows (PAGEDLLM_SKINNY_MAX_ROWS=64) and against the same plans loading their epilogue's inputs
# early (S15_EARLY_EPILOGUE): the 1B and Qwen3 at 96/128 x 512, the 8B at 128 x 1024.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
for m in 8b 1b qwen3; do echo "== forms $m"; timeout 150 python3 benchmarks/gpu/session15_forms.py $m 128 2>&1 | tail -38 | awk 'NR<=8 || NR>23'; done
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 model=$2; shift 2; timeout 200 python3 benchmarks/gpu/session15_decode.py --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | grep -v "^written" | tail -2; }
echo "== 8b wide"; dec 8b-wide llama-3.1-8b --batch-sizes 128 --context 1024
echo "== 8b early"; S15_EARLY_EPILOGUE=1 dec 8b-early llama-3.1-8b --batch-sizes 128 --context 1024
echo "== 8b cublas"; PAGEDLLM_SKINNY_MAX_ROWS=64 dec 8b-cublas llama-3.1-8b --batch-sizes 128 --context 1024
for m in llama-3.2-1b qwen3-0.6b; do
  echo "== $m wide"; dec $m-wide $m --batch-sizes 96 128 --context 512
  echo "== $m early"; S15_EARLY_EPILOGUE=1 dec $m-early $m --batch-sizes 96 128 --context 512
  echo "== $m cublas"; PAGEDLLM_SKINNY_MAX_ROWS=64 dec $m-cublas $m --batch-sizes 96 128 --context 512
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call10-decode.json
