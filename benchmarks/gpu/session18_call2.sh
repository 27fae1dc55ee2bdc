#!/bin/bash
# Session 18, GPU call 2 (H100), PREPARED, NOT RUN (no device was lent after call 1, session17_call7.sh):
# DecodeLaunch.carry_block_ids in whole decode steps, from main's own kernel (no code trees), before it
# becomes a default. session18_decode.py chooses the decode attention's launch by policy:
#   main:   main's launch;
#   kv1:    carried ids in 32-token tiles where the plan has one KV head per program and one split (the
#           1B and Qwen3-0.6B at 64 rows, Qwen3-0.6B at 256): call 1's "c32", now from main's port;
#   kv1st4: the same four stages deep (Triton's pipeliner: more tiles in flight);
#   kv1s2:  the same in two splits (fused merge): twice the programs, which the 60-register kernel fits;
#   all:    carried 32-token tiles in every plan: differs from kv1 only in the 1B's head pairs at 256 rows.
# Usage: session18_call2.sh [VARIANT ...] (default: main kv1 kv1st4 kv1s2); models in $MODELS (default
# the 1B and Qwen3-0.6B), 64 and 256 x 512, two interleaved rounds, registers in round 1. ~23 s a run:
# the default is 16 runs, ~400 s; `MODELS=llama-3.2-1b session18_call2.sh main all` is 4 more.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json18c2; rm -rf $J; mkdir -p $J
variants=${*:-main kv1 kv1st4 kv1s2}
for r in 1 2; do
  for v in $variants; do
    case $v in main) e="";; kv1) e="S18_CARRY=kv1 S18_BLOCK_N=32";; kv1st4) e="S18_CARRY=kv1 S18_BLOCK_N=32 S18_STAGES=4";;
      kv1s2) e="S18_CARRY=kv1 S18_BLOCK_N=32 S18_SPLITS=2";; all) e="S18_CARRY=all S18_BLOCK_N=32";;
      *) echo "unknown variant $v"; exit 2;; esac
    for m in ${MODELS:-llama-3.2-1b qwen3-0.6b}; do
      echo "== $m $v round $r"
      env $e S16_REGS=$([ $r = 1 ] && echo 1 || echo 0) timeout 150 python3 benchmarks/gpu/session18_decode.py \
        --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$m-$v-$r.json --model $M/$m.json \
        --batch-sizes 64 256 --context 512 2>&1 | grep -v -i warn | grep -v "^written" | grep -v "batch  step"
    done
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call2-decode-$(echo $variants | tr ' ' '-').json
