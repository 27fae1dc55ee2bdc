#!/bin/bash
# Session 15, GPU call 11 (H100): decode steps of 96/128 rows on the wide plans, as the engine runs them now
# (norms handed over, epilogue inputs loaded late), against the norms not handed over above 64 rows
# (S15_NO_WIDE_HANDOVER) and against the epilogue inputs loaded early (S15_EARLY_EPILOGUE); the 1B and
# Qwen3-0.6B at 96/128 x 512, the 8B at 128 x 1024. Two rounds of the first two, one of the third.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 model=$2; shift 2; env $EXTRA timeout 200 python3 benchmarks/gpu/session15_decode.py --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | grep -v "^written" | grep -v "batch  step" | tail -2; }
run() { local tag=$1; EXTRA=$2
  echo "== 8b $tag"; dec 8b-$tag llama-3.1-8b --batch-sizes 128 --context 1024
  echo "== 1b $tag"; dec 1b-$tag llama-3.2-1b --batch-sizes 96 128 --context 512
  echo "== qwen3 $tag"; dec qwen3-$tag qwen3-0.6b --batch-sizes 96 128 --context 512; }
run now-1 "S15_NONE=1"
run nohandover-1 "S15_NO_WIDE_HANDOVER=1"
run early-1 "S15_EARLY_EPILOGUE=1"
run nohandover-2 "S15_NO_WIDE_HANDOVER=1"
run now-2 "S15_NONE=1"
python3 benchmarks/gpu/merge_json.py $J $OUT/call11-decode.json
