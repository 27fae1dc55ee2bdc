#!/bin/bash
# Session 26, call 4 (H100; carry .whl/serve and .gpuwork/shared_models): every skinny plan's tiles by TMA
# (the rotated qkv as two half-boxes), and the TMA plans for 129-256 rows. The GPU tests of the linears
# and the norm hand-over, then whole decode steps: this tree (tma), main's behaviour (PAGEDLLM_SKINNY_TMA=0
# PAGEDLLM_SKINNY_TMA_MAX_ROWS=0: pointer loads, cuBLAS above 128 rows) and, for the 8B, TMA loads up to
# 128 rows with cuBLAS above (PAGEDLLM_SKINNY_TMA_MAX_ROWS=0).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_linear.py tests/test_norm_hand_over.py 2>&1 \
  | grep -v -i warn | tail -4 | tee $OUT/call4-tests.log
M=$PWD/.gpuwork/shared_models J=/tmp/json26; rm -rf $J; mkdir -p $J
run() {  # model variant round
  case $2 in
    tma) E="" ;;
    main) E="PAGEDLLM_SKINNY_TMA=0 PAGEDLLM_SKINNY_TMA_MAX_ROWS=0" ;;
    tma128) E="PAGEDLLM_SKINNY_TMA_MAX_ROWS=0" ;;
  esac
  echo "== $1 $2 round $3"
  env $E timeout 100 python3 -m pagedllm.cli bench decode --model $M/$1.json --load-format dummy \
    --max-model-len 2048 --batch-sizes 64 128 192 256 --context 512 --steps 32 --output-json $J/$1-$2-$3.json 2>&1 \
    | grep -v -i warn | grep -v "^written"
}
for r in 1 2; do
  for v in tma main; do
    run llama-3.2-1b $v $r
    run qwen3-0.6b $v $r
  done
done
for v in tma main tma128; do run llama-3.1-8b $v 1; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call4-decode.json
