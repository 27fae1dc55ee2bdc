#!/bin/bash
# Session 13, GPU call 8 (H100): main at fed11b8 (the norm hand-over, the K/V fold taken back): the skinny
# linear's GPU tests (its epilogue was rewritten for the hand-over), the bf16 whole-model tests, and
# Llama-3.1-8B decode steps at 64 x 1024 against main at 7f8b417 (before the hand-over; .gpuwork/s13/base).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 tree=$2 model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 -m pagedllm.cli bench decode \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | tail -3); }
for s in now base; do
  tree=$([ $s = base ] && echo $PWD/.gpuwork/s13/base || echo $PWD)
  echo "== 8b $s"; dec decode-8b-handover-$s $tree llama-3.1-8b --batch-sizes 64 --context 1024
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call8-decode.json
export PYTHONPATH=/tmp/site:$PWD
timeout 200 python3 -m pytest -q -x tests/test_skinny_linear.py 2>&1 | tee $OUT/tests-call8a.log | tail -3
timeout 200 python3 -m pytest -q -x tests/test_triton_generation.py -k "bfloat16" 2>&1 | tee $OUT/tests-call8b.log | tail -3
