#!/bin/bash
# Session 23: whole decode steps, main against decode attention's K/V by TMA (session23_decode.py) in
# one-split plans. Usage: session23_steps.sh [VARIANT ...] (default: main tma1w3 tma4w3 tma1w4); models in
# $MODELS (default the 1B and Qwen3-0.6B), 64 and 256 x 512, two interleaved rounds. ~23 s a run.
# Runs on 6749555's tree (results/session23/decode-tma-attempt.diff), not main.
# Needs .gpuwork/shared_models (a copy of ../shared/models) carried beside .whl/serve.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json23; rm -rf $J; mkdir -p $J
variants=${*:-main tma1w3 tma4w3 tma1w4}
for r in 1 2; do
  for v in $variants; do
    case $v in main) e="";; tma1w3) e="S23_TMA=1,3";; tma4w3) e="S23_TMA=4,3";; tma1w4) e="S23_TMA=1,4";;
      tma2w3) e="S23_TMA=2,3";; *) echo "unknown variant $v"; exit 2;; esac
    for m in ${MODELS:-llama-3.2-1b qwen3-0.6b}; do
      echo "== $m $v round $r"
      env $e S16_REGS=$([ $r = 1 ] && echo 1 || echo 0) timeout 150 python3 benchmarks/gpu/session23_decode.py \
        --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$m-$v-$r.json --model $M/$m.json \
        --batch-sizes 64 256 --context 512 2>&1 | grep -v -i warn | grep -v "^written" | grep -v "batch  step"
    done
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call3-decode-$(echo $variants | tr ' ' '-').json
