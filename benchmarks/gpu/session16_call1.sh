#!/bin/bash
# Session 16, GPU call 1 (H100): decode attention reads its first K/V tile before the PDL wait (the newest
# token after it), against main at the session's start (a copy in .gpuwork/s16/start): decode steps of the
# 1B and Qwen3-0.6B at 64 and 256 x 512, two interleaved rounds; the kernel's registers; then the GPU tests
# of the attention kernels and the CUDA graphs.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J; NOW=$PWD; START=$PWD/.gpuwork/s16/start
cp benchmarks/gpu/session16_decode.py /tmp/s16_decode.py; cp benchmarks/gpu/kernel_costs.py /tmp/
dec() { local name=$1 tree=$2 model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 /tmp/s16_decode.py \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 \
  | grep -v -i warn | grep -v "^written" | grep -v "batch  step"); }
for r in 1 2; do
  for s in now start; do
    tree=$([ $s = start ] && echo $START || echo $NOW)
    echo "== 1b $s $r"; S16_REGS=$([ $r = 1 ] && echo 1 || echo 0) dec decode-1b-$s-$r $tree llama-3.2-1b --batch-sizes 64 256 --context 512
    echo "== qwen3 $s $r"; S16_REGS=$([ $r = 1 ] && echo 1 || echo 0) dec decode-qwen3-$s-$r $tree qwen3-0.6b --batch-sizes 64 256 --context 512
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call1-decode.json
export PYTHONPATH=/tmp/site:$PWD
echo "== attention tests"; timeout 200 python3 -m pytest -q -x tests/test_triton_attention.py 2>&1 | tail -3
echo "== graphs"; timeout 150 python3 -m pytest -q -x tests/test_piecewise_graphs.py tests/test_cuda_graphs.py 2>&1 | tail -3
