#!/bin/bash
# Session 28, call 2 (H100; carry .whl/serve and .gpuwork/shared_models): the 1B's 256-row step with the
# gated gate_up by TMA (call 1's best), plus o_proj (a producer) and qkv (plain, then the rotary kernel) by
# TMA, and down (a producer) on cuBLAS or on TMA plans of several shapes. Two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models J=/tmp/json28b; rm -rf $J; mkdir -p $J
D=2048x8192
declare -A KINDS=([gated]=gated [mix]=gated,producer,plain [d64s1]=gated,producer,plain [d128s4]=gated,producer,plain
                  [d256s4]=gated,producer,plain [d128x64s2]=gated,producer,plain [d128s2]=gated,producer,plain)
declare -A PLANS=([gated]= [mix]="$D=none" [d64s1]="$D=64,64,128,1,4,6" [d128s4]="$D=128,128,64,4,8,6"
                  [d256s4]="$D=256,64,64,4,8,4" [d128x64s2]="$D=128,64,128,2,8,4" [d128s2]="$D=128,128,64,2,8,6")
run() {  # variant round [profile]
  v=$1 r=$2
  echo "== $v round $r"
  prof=(); [ "${3:-}" = profile ] && prof=(--profile-dir /tmp/prof-$v)
  PAGEDLLM_SKINNY_TMA_MAX_ROWS=256 PAGEDLLM_SKINNY_TMA_KINDS=${KINDS[$v]} PAGEDLLM_SKINNY_TMA_PLANS=${PLANS[$v]} \
    timeout 150 python3 -m pagedllm.cli bench decode --model $M/llama-3.2-1b.json --load-format dummy \
    --max-model-len 2048 --batch-sizes 256 --context 512 --steps 32 "${prof[@]}" --output-json $J/$v-$r.json 2>&1 \
    | grep -v -i warn | grep -v "^written" | grep -A1 "^ batch" | tail -1
  if [ "${3:-}" = profile ]; then
    cp /tmp/prof-$v/decode-chain-b256.json $OUT/call2-chain-$v-b256.json
  fi
  sleep 1
}
run mix 1 profile
for v in gated d64s1 d128s4 d256s4 d128x64s2 d128s2; do run $v 1; done
for v in d128s2 d128x64s2 d256s4 d128s4 d64s1 mix gated; do run $v 2; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call2-decode.json
