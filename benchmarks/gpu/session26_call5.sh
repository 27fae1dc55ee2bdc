#!/bin/bash
# Session 26, call 5 (H100; carry .whl/serve and .gpuwork/shared_models): the committed rule (TMA loads up
# to 64 rows, pointer plans for 65-128, TMA plans for 129-256 rows on weights of at most 8M elements).
# GPU tests of the linears, the hand-over, generation against the float32 truth and CUDA graphs; then
# whole decode steps against main's behaviour (PAGEDLLM_SKINNY_TMA=0 PAGEDLLM_SKINNY_TMA_MAX_ROWS=0), two
# interleaved rounds for the 1B and Qwen3-0.6B, one for the 8B at 64 and 256 rows.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 230 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_linear.py tests/test_norm_hand_over.py \
  tests/test_triton_generation.py tests/test_cuda_graphs.py -k "not identical_to_reference" 2>&1 \
  | grep -v -i warn | tail -5 | tee $OUT/call5-tests.log
M=$PWD/.gpuwork/shared_models J=/tmp/json26; rm -rf $J; mkdir -p $J
run() {  # model variant round batches...
  m=$1 v=$2 r=$3; shift 3
  E=""; [ $v = main ] && E="PAGEDLLM_SKINNY_TMA=0 PAGEDLLM_SKINNY_TMA_MAX_ROWS=0"
  echo "== $m $v round $r"
  env $E timeout 150 python3 -m pagedllm.cli bench decode --model $M/$m.json --load-format dummy \
    --max-model-len 2048 --batch-sizes "$@" --context 512 --steps 32 --output-json $J/$m-$v-$r.json 2>&1 \
    | grep -v -i warn | grep -v "^written"
  sleep 3  # the process's GPU memory back before the next one sizes its cache
}
for r in 1 2; do
  for v in tma main; do
    run llama-3.2-1b $v $r 64 128 192 256
    run qwen3-0.6b $v $r 64 128 192 256
  done
done
for v in tma main; do run llama-3.1-8b $v 1 64 256; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call5-decode.json
