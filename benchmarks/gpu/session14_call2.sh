#!/bin/bash
# Session 14, GPU call 2 (H100): skinny_config's 64-feature tier (Qwen3-0.6B's gate_up, Qwen2.5-0.5B's
# gate_up and Llama-3.1-8B's qkv change plans) against main at 00ecf17 (a copy in .gpuwork/s14/base):
# decode steps, two interleaved rounds (the 8B one), then the skinny linears' GPU tests.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 tree=$2 model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 -m pagedllm.cli bench decode \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | tail -2); }
for r in 1 2; do
  for s in now base; do
    tree=$([ $s = base ] && echo $PWD/.gpuwork/s14/base || echo $PWD)
    echo "== qwen3 $s $r"; dec decode-qwen3-$s-$r $tree qwen3-0.6b --batch-sizes 64 --context 512
    echo "== qwen2.5 $s $r"; dec decode-qwen25-$s-$r $tree qwen2.5-0.5b --batch-sizes 64 --context 512
    [ $r = 1 ] && { echo "== 8b $s"; dec decode-8b-$s $tree llama-3.1-8b --batch-sizes 64 --context 1024; }
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call2-decode.json
export PYTHONPATH=/tmp/site:$PWD
timeout 150 python3 -m pytest -q -x tests/test_skinny_linear.py 2>&1 | tee $OUT/tests-call2.log | tail -3
