#!/bin/bash
# Session 26, call 6 (H100; carry .whl/serve and .gpuwork/shared_models): the committed change (TMA loads
# for the 64-row plans only). GPU tests of the linears, the hand-over, generation against the float32
# truth and CUDA graphs; then decode steps at 64 and 256 rows against pointer loads
# (PAGEDLLM_SKINNY_TMA=0, main before), two interleaved rounds each for the 1B and Qwen3-0.6B, one for the 8B.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_linear.py tests/test_norm_hand_over.py \
  tests/test_triton_generation.py tests/test_cuda_graphs.py -k "not identical_to_reference" 2>&1 \
  | grep -v -i warn | tail -5 | tee $OUT/call6-tests.log
M=$PWD/.gpuwork/shared_models J=/tmp/json26; rm -rf $J; mkdir -p $J
run() {  # model variant round batches...
  m=$1 v=$2 r=$3; shift 3
  E=""; [ $v = pointers ] && E="PAGEDLLM_SKINNY_TMA=0"
  echo "== $m $v round $r"
  env $E timeout 120 python3 -m pagedllm.cli bench decode --model $M/$m.json --load-format dummy \
    --max-model-len 2048 --batch-sizes "$@" --context 512 --steps 32 --output-json $J/$m-$v-$r.json 2>&1 \
    | grep -v -i warn | grep -v "^written"
  sleep 3
}
for r in 1 2; do
  for v in tma pointers; do
    run llama-3.2-1b $v $r 64 256
    run qwen3-0.6b $v $r 64 256
  done
done
for v in tma pointers; do run llama-3.1-8b $v 1 64; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call6-decode.json
