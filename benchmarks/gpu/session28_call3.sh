#!/bin/bash
# Session 28, call 3 (H100; carry .whl/serve and .gpuwork/shared_models): the gated gate_up by TMA above 128
# rows (call 1's best for the 1B at 256) against cuBLAS on every model at 192 and 256 rows; Qwen3-0.6B with
# every product by TMA too (session 26: 4-5% faster); the 1B's rotated qkv by TMA in two more tile shapes.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models J=/tmp/json28c; rm -rf $J; mkdir -p $J
Q=3072x2048
declare -A KINDS=([cublas]=none [gated]=gated [all]=plain,producer,gated,rotated [gr128]=gated,rotated [gr64s4]=gated,rotated)
declare -A PLANS=([cublas]= [gated]= [all]= [gr128]="$Q=128,64,128,1,8,4" [gr64s4]="$Q=64,64,64,1,4,4")
run() {  # model variant round batches...
  m=$1 v=$2 r=$3; shift 3
  echo "== $m $v round $r"
  PAGEDLLM_SKINNY_TMA_MAX_ROWS=256 PAGEDLLM_SKINNY_TMA_KINDS=${KINDS[$v]} PAGEDLLM_SKINNY_TMA_PLANS=${PLANS[$v]} \
    timeout 150 python3 -m pagedllm.cli bench decode --model $M/$m.json --load-format dummy \
    --max-model-len 2048 --batch-sizes "$@" --context 512 --steps 32 --output-json $J/$m-$v-$r.json 2>&1 \
    | grep -v -i warn | grep -v "^written" | grep -A3 "^ batch" | tail -n +2
  sleep 1
}
for v in cublas gated gr128 gr64s4; do run llama-3.2-1b $v 1 192 256; done
for v in cublas gated all; do run qwen3-0.6b $v 1 192 256; done
for v in gated cublas; do run llama-3.2-1b $v 2 192 256; done
for v in gated cublas; do run qwen3-0.6b $v 2 192 256; done
for v in cublas gated; do run llama-3.1-8b $v 1 256; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call3-decode.json
