#!/bin/bash
# Session 15, GPU call 14 (H100): where the wide plans load their epilogue's inputs. Decode steps of the 8B at
# 128 x 1024 and Qwen3-0.6B and the 1B at 96/128 x 512, two interleaved rounds: every wide plan late (as
# committed), only the norm's producers late (S15_LATE_PRODUCERS_ONLY), every wide plan early
# (S15_EARLY_EPILOGUE).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 model=$2 switch=$3; shift 3; env $switch timeout 200 python3 benchmarks/gpu/session15_decode.py \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 \
  | grep -v -i warn | grep -v "^written" | grep -v "batch  step" | tail -2; }
for r in 1 2; do
  for v in late:S15_NONE=1 producers:S15_LATE_PRODUCERS_ONLY=1 early:S15_EARLY_EPILOGUE=1; do
    tag=${v%%:*}; sw=${v#*:}
    echo "== 8b $tag $r"; dec 8b-$tag-$r llama-3.1-8b $sw --batch-sizes 128 --context 1024
    echo "== qwen3 $tag $r"; dec qwen3-$tag-$r qwen3-0.6b $sw --batch-sizes 96 128 --context 512
    echo "== 1b $tag $r"; dec 1b-$tag-$r llama-3.2-1b $sw --batch-sizes 96 128 --context 512
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call14-decode.json
