#!/bin/bash
# Session 26, call 2 (H100; carry .whl/serve and .gpuwork/shared_models): the TMA plans for steps of
# 129-256 rows. First the GPU tests of the linears, the norm hand-over and generation, then whole decode
# steps with the TMA plans (this tree) against cuBLAS above 128 rows (PAGEDLLM_SKINNY_TMA_MAX_ROWS=0, the
# engine before), two interleaved rounds for the 1B and Qwen3-0.6B, one for the 8B.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 230 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_linear.py tests/test_norm_hand_over.py \
  tests/test_triton_generation.py -k "not identical_to_reference" 2>&1 | grep -v -i warn | tail -6 | tee $OUT/call2-tests.log
M=$PWD/.gpuwork/shared_models J=/tmp/json26; rm -rf $J; mkdir -p $J
run() {  # model tma-rows round
  echo "== $1 TMA_MAX_ROWS=$2 round $3"
  PAGEDLLM_SKINNY_TMA_MAX_ROWS=$2 timeout 110 python3 -m pagedllm.cli bench decode --model $M/$1.json --load-format dummy \
    --max-model-len 2048 --batch-sizes 64 192 256 --context 512 --steps 32 --output-json $J/$1-$2-$3.json 2>&1 \
    | grep -v -i warn | grep -v "^written"
}
for r in 1 2; do
  for t in 256 0; do
    run llama-3.2-1b $t $r
    run qwen3-0.6b $t $r
  done
done
run llama-3.1-8b 256 1
run llama-3.1-8b 0 1
python3 benchmarks/gpu/merge_json.py $J $OUT/call2-decode.json
