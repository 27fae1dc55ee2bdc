#!/bin/bash
# Session 11, GPU call 11 (H100): decode attention with the next tile's block ids carried one iteration
# ahead (decode.CARRY_BLOCK_IDS) against ids loaded in the iteration: the kernel alone
# (session11_carry_ids.py), then whole decode steps (S11_NO_CARRY=1 for the old loop), interleaved.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 240 python3 benchmarks/gpu/session11_carry_ids.py --out $OUT/carry-ids.json \
  --note "session 11 call 11, main at the commit adding CARRY_BLOCK_IDS" 2>&1 | grep -v -i warn | grep "^r1" | tail -60
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 100 python3 benchmarks/gpu/session11_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --output-json $OUT/$name.json "$@" 2>&1 | grep -v -i warn | tail -2; }
i=0
for s in carry old carry old; do i=$((i+1)); echo "== 1b $s $i $(date +%T)"
  if [ $s = old ]; then export S11_NO_CARRY=1; else unset S11_NO_CARRY; fi
  dec decode-1b-$s-$i --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512
done
for s in carry old; do i=$((i+1)); echo "== 8b $s $i $(date +%T)"
  if [ $s = old ]; then export S11_NO_CARRY=1; else unset S11_NO_CARRY; fi
  dec decode-8b-$s-$i --model $M/llama-3.1-8b.json --batch-sizes 64 --context 1024
done
echo "== end $(date +%T)"
