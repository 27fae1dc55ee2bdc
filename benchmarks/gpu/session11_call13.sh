#!/bin/bash
# Session 11, GPU call 13 (H100): decode attention's new launch for one KV head of <= 64 dims per program
# (32-token tiles, block ids carried one iteration ahead) against the one before: the kernel rows it
# changes, then whole decode steps (S11_NO_CARRY=1 for the launch before), interleaved.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 200 python3 benchmarks/gpu/session11_carry_table.py --out $OUT/carry-table.json \
  --note "session 11 call 13, main at the commit giving decode attention carried block ids by default" 2>&1 \
  | grep -v -i warn | grep "^r1" | tail -20
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 100 python3 benchmarks/gpu/session11_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --output-json $OUT/$name.json "$@" 2>&1 | grep -v -i warn | tail -2; }
i=0
for s in now before now before; do i=$((i+1)); echo "== 1b $s $i $(date +%T)"
  if [ $s = before ]; then export S11_NO_CARRY=1; else unset S11_NO_CARRY; fi
  dec decode-1b-launch-$s-$i --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512
done
for s in now before; do i=$((i+1)); echo "== qwen2.5 $s $i $(date +%T)"
  if [ $s = before ]; then export S11_NO_CARRY=1; else unset S11_NO_CARRY; fi
  dec decode-qwen25-launch-$s-$i --model $M/qwen2.5-0.5b.json --batch-sizes 64 256 --context 512
done
echo "== end $(date +%T)"
