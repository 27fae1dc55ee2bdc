#!/bin/bash
# Session 15, GPU call 13 (H100): the 8B at 128 x 1024 on one machine, two interleaved rounds: the wide plans
# as committed (only o_proj's 64-row tiles load their epilogue's inputs early), every wide plan loading them
# late (S15_LATE_EPILOGUE), and cuBLAS above 64 rows (PAGEDLLM_SKINNY_MAX_ROWS=64).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1; shift; env "$@" timeout 200 python3 benchmarks/gpu/session15_decode.py --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/llama-3.1-8b.json --batch-sizes 128 \
  --context 1024 2>&1 | grep -v -i warn | grep -v "^written" | grep -v "batch  step" | tail -2; }
for r in 1 2; do
  echo "== now $r"; dec 8b-now-$r S15_NONE=1
  echo "== late $r"; dec 8b-late-$r S15_LATE_EPILOGUE=1
  echo "== cublas $r"; dec 8b-cublas-$r PAGEDLLM_SKINNY_MAX_ROWS=64
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call13-decode.json
