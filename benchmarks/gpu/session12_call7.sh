#!/bin/bash
# Session 12, GPU call 7 (H100): the input and post-attention norms (with their residual adds) inside the
# qkv and gate_up skinny launches (AddNorm), against main at 5333c9e (a copy in .gpuwork/s12/base),
# 1B decode steps at 64 and 256 x 512, two
# interleaved rounds; then the skinny tests and generation through the Triton backend.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { name=$1; tree=$2; PYTHONPATH=/tmp/site:$tree timeout 100 python3 $tree/benchmarks/gpu/session12_decode.py --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/llama-3.2-1b.json --batch-sizes 64 256 \
  --context 512 2>&1 | grep -v -i warn | tail -3; }
for r in 1 2; do
  for s in addnorm base; do echo "== $s $r"
    tree=$([ $s = base ] && echo $PWD/.gpuwork/s12/base || echo $PWD)
    dec decode-1b-addnorm-$s-$r $tree
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call$CALL-decode.json
export PYTHONPATH=/tmp/site:$PWD
timeout 330 python3 -m pytest -q -x tests/test_skinny_linear.py tests/test_triton_generation.py -k "not greedy_generation" 2>&1 | tee $OUT/tests-call$CALL.log | tail -3
