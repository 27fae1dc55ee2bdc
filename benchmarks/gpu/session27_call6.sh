#!/bin/bash
# Session 27, call 6 (H100; carry .whl/serve and .gpuwork/shared_models): the 1B's 64-row step with the
# rotated qkv launch storing K/V (PAGEDLLM_QKV_STORES_KV=1) and without (=0), each step graph's kernels
# charged with the time they add to the chain (bench decode --profile-dir): which kernel slowed in call 4?
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
for v in 1 0 1; do
  echo "== stores=$v"
  PAGEDLLM_QKV_STORES_KV=$v timeout 150 python3 -m pagedllm.cli bench decode --model $M/llama-3.2-1b.json \
    --load-format dummy --max-model-len 2048 --batch-sizes 64 --context 512 --steps 32 --profile-dir /tmp/prof$v \
    --output-json $OUT/call6-decode-stores$v.json 2>&1 | grep -v -i warn | grep -v "^written"
  cp /tmp/prof$v/decode-chain-b64.json $OUT/call6-chain-stores$v-b64.json
  head -40 /tmp/prof$v/decode-chain-b64.txt
  sleep 2
done
