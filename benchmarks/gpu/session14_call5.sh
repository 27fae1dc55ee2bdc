#!/bin/bash
# Session 14, GPU call 5 (H100): decode steps of at most 64 rows store k and v from the rotated qkv
# projection's epilogue (no K/V-write launch), against main at a8c254a (rotary and qk_norm_rope store, the
# skinny projection does not; a copy in .gpuwork/s14/base3): 1B 64 x 512 two interleaved rounds, 8B
# 64 x 1024 one; then the GPU tests of the stores, the skinny linears, the hand-over and the graphs.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 tree=$2 model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 -m pagedllm.cli bench decode \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | tail -1); }
for r in 1 2; do
  for s in now base; do
    tree=$([ $s = base ] && echo $PWD/.gpuwork/s14/base3 || echo $PWD)
    echo "== 1b $s $r"; dec decode-1b-$s-$r $tree llama-3.2-1b --batch-sizes 64 --context 512
    [ $r = 1 ] && { echo "== 8b $s"; dec decode-8b-$s $tree llama-3.1-8b --batch-sizes 64 --context 1024; }
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call5-decode.json
export PYTHONPATH=/tmp/site:$PWD
timeout 240 python3 -m pytest -q tests/test_kv_store_in_rotary.py tests/test_skinny_linear.py tests/test_norm_hand_over.py \
  tests/test_cuda_graphs.py tests/test_piecewise_graphs.py 2>&1 | tee $OUT/tests-call5.log | tail -3
