#!/bin/bash
# Session 18, GPU call 2 (H100), PREPARED, NOT RUN (no device was lent after call 1, session17_call7.sh):
# carried block ids in whole decode steps from main's own code (no code trees): main carries them by
# default for one KV head of <= 64 dims per program in one split (the 1B at 64 rows), measured so far
# only as call 1's experiment tree. session18_decode.py chooses the decode attention's launch by policy:
#   main:   main's launch;
#   off:    no carried ids anywhere (main before session 18: 128-token tiles for the 1B at 64 rows);
#   kv1st4: carried 32-token tiles where the plan has one KV head per program and one split, Qwen3-0.6B's
#           head dim 128 too, four stages deep (Triton's pipeliner: more tiles in flight);
#   kv1s2:  the same three stages deep in two splits (fused merge): twice the programs, which the
#           60-register kernel fits;
#   all:    carried 32-token tiles in every plan: differs from main in the 1B's head pairs at 256 rows
#           (and Qwen3's one-split plans, which call 1 measured).
# Usage: session18_call2.sh [VARIANT ...] (default: main off kv1st4 kv1s2); models in $MODELS (default
# the 1B and Qwen3-0.6B), 64 and 256 x 512, two interleaved rounds, registers in round 1. ~23 s a run:
# the default is 16 runs, ~400 s; `MODELS=llama-3.2-1b session18_call2.sh main all` is 4 more.
# Check first that main's copy_bytes_per_s (CUDA events since session 18) spreads less than 2.79-2.96.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json18c2; rm -rf $J; mkdir -p $J
variants=${*:-main off kv1st4 kv1s2}
for r in 1 2; do
  for v in $variants; do
    case $v in main) e="";; off) e="S18_CARRY=off";; kv1st4) e="S18_CARRY=kv1 S18_BLOCK_N=32 S18_STAGES=4";;
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
