#!/bin/bash
# Session 13, GPU call 7 (H100): the K/V write folded into decode attention (a pure decode step's kernel
# stores the step's K/V and attends to the new token from the step's rows; its new rows now loaded before the
# loop, call 6 loaded them after it) against main at ec20cd8 (a copy
# in .gpuwork/s13/base2), decode steps of Llama-3.2-1B and Qwen3-0.6B at 64 and 256 x 512, two interleaved
# rounds; then the GPU tests of whole models through the Triton backend (the norm hand-over included).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 tree=$2 model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 -m pagedllm.cli bench decode \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | tail -3); }
for r in 1 2; do
  for s in now base; do
    tree=$([ $s = base ] && echo $PWD/.gpuwork/s13/base2 || echo $PWD)
    echo "== 1b $s $r"; dec decode-1b-kvfold2-$s-$r $tree llama-3.2-1b --batch-sizes 64 256 --context 512
    echo "== qwen3 $s $r"; dec decode-qwen3-kvfold2-$s-$r $tree qwen3-0.6b --batch-sizes 64 256 --context 512
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call7-decode.json
export PYTHONPATH=/tmp/site:$PWD
timeout 300 python3 -m pytest -q -x tests/test_triton_generation.py 2>&1 | tee $OUT/tests-call7.log | tail -3
