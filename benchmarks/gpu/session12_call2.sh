#!/bin/bash
# Session 12, GPU call 2 (H100): the gated skinny launch (gate_up + SiLU-and-multiply in one kernel)
# against two launches (S12_NO_GATED=1), and the skip bounds of call 1 whose files did not come back
# (SiLU, rotary), 1B decode steps at 64 and 256 x 512, two interleaved rounds; then the skinny tests.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { name=$1; shift; timeout 100 python3 benchmarks/gpu/session12_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --output-json $J/$name.json --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512 2>&1 | grep -v -i warn | tail -3; }
for r in 1 2; do
  for s in gated unfused skip-silu skip-rotary; do echo "== $s $r"
    unset S12_SKIP_SILU S12_SKIP_ROTARY S12_NO_GATED
    case $s in unfused) export S12_NO_GATED=1;; skip-silu) export S12_SKIP_SILU=1;; skip-rotary) export S12_SKIP_ROTARY=1;; esac
    dec decode-1b-$s-$r
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call2-decode.json
timeout 200 python3 -m pytest -q -x tests/test_skinny_linear.py 2>&1 | tee $OUT/tests-skinny-call2.log | tail -3
