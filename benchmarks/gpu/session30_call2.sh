#!/bin/bash
# Ran on e9b1c2f (the whole-head rotated qkv, taken back in d882c24).
# Session 30, call 2 (H100; carry .whl/serve and .gpuwork/shared_models): why the 1B's 256-row step did not
# gain from its rotated qkv in whole heads (call 1): each way's step graph profiled (kernel charges), then
# timed again, two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models J=/tmp/json30b; rm -rf $J; mkdir -p $J
declare -A KINDS=([rotated]=plain,producer,gated,rotated [before]=plain,producer,gated)
run() {  # variant round [profile]
  v=$1 r=$2
  echo "== $v round $r"
  prof=(); [ "${3:-}" = profile ] && prof=(--profile-dir /tmp/prof-$v)
  PAGEDLLM_SKINNY_TMA_KINDS=${KINDS[$v]} timeout 150 python3 -m pagedllm.cli bench decode \
    --model $M/llama-3.2-1b.json --load-format dummy --max-model-len 2048 --batch-sizes 256 --context 512 \
    --steps 32 "${prof[@]}" --output-json $J/$v-$r.json 2>&1 | grep -v -i warn | grep -v "^written" | grep -A2 "^ batch"
  if [ "${3:-}" = profile ]; then
    cp /tmp/prof-$v/decode-chain-b256.json $OUT/call2-chain-$v-b256.json
    head -24 /tmp/prof-$v/decode-chain-b256.txt
  fi
}
for v in rotated before; do run $v 1 profile; done
for v in before rotated; do run $v 2; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call2-decode.json
