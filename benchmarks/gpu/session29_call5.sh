#!/bin/bash
# Session 29, call 5 (H100; carry .whl/serve and .gpuwork/shared_models): the committed short-tile rule
# (head dims over 64 in 32-token decode tiles at 3.5-6 programs an SM) against 64-token tiles
# (PAGEDLLM_DECODE_SHORT_TILES=0) in `bench decode`: two interleaved rounds for Qwen3-0.6B at 64, 96 and 256
# rows (256: a control, which the rule leaves alone), one for the 8B at 64.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
M=$PWD/.gpuwork/shared_models J=/tmp/json29e; rm -rf $J; mkdir -p $J
run() {  # model short-tiles round batches...
  m=$1 t=$2 r=$3; shift 3
  echo "== $m SHORT_TILES=$t round $r"
  PAGEDLLM_DECODE_SHORT_TILES=$t timeout 150 python3 -m pagedllm.cli bench decode --model $M/$m.json \
    --load-format dummy --max-model-len 2048 --batch-sizes "$@" --context 512 --steps 32 \
    --output-json $J/$m-$t-$r.json 2>&1 | grep -v -i warn | grep -v "^written" | grep -A3 "^ batch" | tail -n +2
}
for r in 1 2; do
  for t in 1 0; do run qwen3-0.6b $t $r 64 96 256; done
done
for t in 1 0; do run llama-3.1-8b $t 1 64; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call5-decode.json
