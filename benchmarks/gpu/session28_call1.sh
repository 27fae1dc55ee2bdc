#!/bin/bash
# Session 28, call 1 (H100; carry .whl/serve and .gpuwork/shared_models): the Llama-3.2-1B's 256-row decode
# step with TMA plans above 128 rows for some kinds of product (PAGEDLLM_SKINNY_TMA_MAX_ROWS/_KINDS/_PLANS)
# against cuBLAS for all. Round 1 profiles each variant's step graph (kernel charges), round 2 times again.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models J=/tmp/json28; rm -rf $J; mkdir -p $J
ROT="3072x2048=64,64,128,1,4,6"  # the 1B's qkv in 64-feature tiles: a rotated tile then holds half-heads
declare -A KINDS=([cublas]=none [all]=plain,producer,gated,rotated [gated]=gated [gated_rot]=gated,rotated
                  [all_rot]=plain,producer,gated,rotated)
declare -A PLANS=([cublas]= [all]= [gated]= [gated_rot]=$ROT [all_rot]=$ROT)
run() {  # variant round [profile]
  v=$1 r=$2
  echo "== $v round $r"
  prof=(); [ "${3:-}" = profile ] && prof=(--profile-dir /tmp/prof-$v)
  PAGEDLLM_SKINNY_TMA_MAX_ROWS=256 PAGEDLLM_SKINNY_TMA_KINDS=${KINDS[$v]} PAGEDLLM_SKINNY_TMA_PLANS=${PLANS[$v]} \
    timeout 150 python3 -m pagedllm.cli bench decode --model $M/llama-3.2-1b.json --load-format dummy \
    --max-model-len 2048 --batch-sizes 256 --context 512 --steps 32 "${prof[@]}" --output-json $J/$v-$r.json 2>&1 \
    | grep -v -i warn | grep -v "^written"
  if [ "${3:-}" = profile ]; then
    cp /tmp/prof-$v/decode-chain-b256.json $OUT/call1-chain-$v-b256.json
    head -30 /tmp/prof-$v/decode-chain-b256.txt
  fi
  sleep 2
}
for v in cublas all gated gated_rot all_rot; do run $v 1 profile; done
for v in all_rot gated_rot gated all cublas; do run $v 2; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call1-decode.json
