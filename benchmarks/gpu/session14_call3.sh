#!/bin/bash
# Session 14, GPU call 3 (H100): the step's keys and values stored by the kernel that computes the keys
# (rotary on steps of more than 64 rows, Qwen3's qk_norm_rope at every size) instead of a K/V-write launch,
# against main at 71b3cb1 (a copy in .gpuwork/s14/base2): decode steps, two interleaved rounds; then the
# GPU tests of the kernels, the graphs and the fused layers.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 tree=$2 model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 -m pagedllm.cli bench decode \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | tail -1); }
for r in 1 2; do
  for s in now base; do
    tree=$([ $s = base ] && echo $PWD/.gpuwork/s14/base2 || echo $PWD)
    echo "== qwen3 $s $r"; dec decode-qwen3-$s-$r $tree qwen3-0.6b --batch-sizes 64 256 --context 512
    echo "== 1b $s $r"; dec decode-1b-$s-$r $tree llama-3.2-1b --batch-sizes 256 --context 512
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call3-decode.json
export PYTHONPATH=/tmp/site:$PWD
timeout 200 python3 -m pytest -q tests/test_kv_store_in_rotary.py tests/test_qk_norm_rope.py tests/test_fused_ops.py \
  tests/test_piecewise_graphs.py tests/test_cuda_graphs.py 2>&1 | tee $OUT/tests-call3.log | tail -3
