#!/bin/bash
# Session 7, GPU call 1 (H100): GPU tests of the greedy argmax kernels and the one-launch rotary, the argmax
# micro-benchmark, where the Llama-3.2-1B throughput run's time goes (session7_phases.py), then decode steps:
# Llama-3.2-1B before (ac599b9, in .gpuwork/s7/old) and after, and Llama-3.1-8B with async scheduling.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
NOTE="main at ac599b9 + session 7 working tree (greedy argmax, one-launch rotary)"
timeout 240 python3 -m pytest -q -x tests/test_greedy_argmax.py tests/test_fused_ops.py tests/test_sampler.py \
  tests/test_rotary_side_by_side.py > $OUT/tests.log 2>&1; tail -3 $OUT/tests.log
timeout 60 python3 benchmarks/gpu/session7_argmax.py "$NOTE"
timeout 200 python3 benchmarks/gpu/session7_phases.py --model $M/llama-3.2-1b.json --out $OUT --name phases-1b 2>&1 \
  | grep -v -i -E "warn|USDT" | tail -34
dec() { tree=$1; name=$2; shift 2; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 -m pagedllm.cli bench decode \
  --load-format dummy --max-model-len 2048 --steps 32 "$@" --output-json $OUT/$name.json 2>&1 | grep -v -i -E "warn" | tail -4); }
cp -r benchmarks .gpuwork/s7/old/ 2>/dev/null
for tree in old new; do
  T=$([ $tree = old ] && echo $PWD/.gpuwork/s7/old || echo $PWD)
  echo "== decode llama-3.2-1b $tree"; dec $T decode-1b-$tree --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512
done
echo "== decode llama-3.1-8b new"; dec $PWD decode-8b-new --model $M/llama-3.1-8b.json --batch-sizes 64 256 --context 1024
