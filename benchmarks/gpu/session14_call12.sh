#!/bin/bash
# Session 14, GPU call 12 (H100): main at the session's end, decode steps against their floor, every
# shape of the 1.3x target in one run: Llama-3.2-1B and Qwen3-0.6B at 64 and 256 x 512 (two rounds),
# Llama-3.1-8B at 64 x 1024 (one).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 model=$2; shift 2; timeout 200 python3 -m pagedllm.cli bench decode --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | tail -3; }
for r in 1 2; do
  echo "== 1b $r"; dec decode-1b-$r llama-3.2-1b --batch-sizes 64 256 --context 512
  echo "== qwen3 $r"; dec decode-qwen3-$r qwen3-0.6b --batch-sizes 64 256 --context 512
done
echo "== 8b"; dec decode-8b llama-3.1-8b --batch-sizes 64 --context 1024
python3 benchmarks/gpu/merge_json.py $J $OUT/call12-decode.json
