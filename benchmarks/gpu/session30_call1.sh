#!/bin/bash
# Ran on e9b1c2f: the rotated whole-head tiles and PAGEDLLM_QK_NORM_HEADS it times were taken back in d882c24.
# Session 30, call 1 (H100; carry .whl/serve and .gpuwork/shared_models): the 129-256-row steps' rotated qkv
# in tiles of whole heads (PAGEDLLM_SKINNY_TMA_KINDS without "rotated": the product, then the rotary kernel,
# as before) for the 1B at 192 and 256 rows; Qwen3's q-k norm launch over programs of 8 or 4 heads against
# one program a token (PAGEDLLM_QK_NORM_HEADS=0) at 64 and 256 rows. `bench decode`, two interleaved rounds.
# First the GPU tests of the rotated qkv (compile check), last the q-k norm's and the rotated launch's others.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_linear.py -k "qkv_fuses or rotated" 2>&1 \
  | tail -3 | tee $OUT/call1-tests-rotated.log
M=$PWD/.gpuwork/shared_models J=/tmp/json30a; rm -rf $J; mkdir -p $J
run() {  # model tag env... -- batches...
  m=$1 tag=$2; shift 2
  envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  echo "== $m $tag"
  env "${envs[@]}" timeout 150 python3 -m pagedllm.cli bench decode --model $M/$m.json \
    --load-format dummy --max-model-len 2048 --batch-sizes "$@" --context 512 --steps 32 \
    --output-json $J/$m-$tag.json 2>&1 | grep -v -i warn | grep -v "^written" | grep -A4 "^ batch" | tail -n +2
}
for r in 1 2; do
  run llama-3.2-1b rotated-$r X=1 -- 192 256
  run llama-3.2-1b before-$r PAGEDLLM_SKINNY_TMA_KINDS=plain,producer,gated -- 192 256
  for h in 8 4 0; do run qwen3-0.6b heads$h-$r PAGEDLLM_QK_NORM_HEADS=$h -- 64 256; done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call1-decode.json
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_qk_norm_rope.py tests/test_kv_store_in_rotary.py \
  tests/test_skinny_linear.py 2>&1 | tail -3 | tee $OUT/call1-tests-linears.log
