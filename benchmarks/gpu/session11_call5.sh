#!/bin/bash
# Session 11, GPU call 5 (H100): the skinny linears' new plans (session11_linears.py's winners) in whole
# decode steps, interleaved with session 9's plans (S11_OLD_SKINNY=1): Llama-3.2-1B at 64 and 256 x 512,
# Llama-3.1-8B at 64 x 1024; then the skinny linears' GPU tests.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 150 python3 benchmarks/gpu/session11_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --output-json $OUT/$name.json "$@" 2>&1 | grep -v -i warn | tail -2; }
i=0
for s in new old new old; do i=$((i+1)); echo "== 1b $s $i $(date +%T)"
  if [ $s = old ]; then export S11_OLD_SKINNY=1; else unset S11_OLD_SKINNY; fi
  dec decode-1b-plans-$s-$i --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512
done
for s in new old; do i=$((i+1)); echo "== 8b $s $i $(date +%T)"
  if [ $s = old ]; then export S11_OLD_SKINNY=1; else unset S11_OLD_SKINNY; fi
  dec decode-8b-plans-$s-$i --model $M/llama-3.1-8b.json --batch-sizes 64 --context 1024
done
unset S11_OLD_SKINNY
echo "== tests $(date +%T)"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_linear.py > $OUT/tests-skinny.log 2>&1
tail -3 $OUT/tests-skinny.log
echo "== end $(date +%T)"
