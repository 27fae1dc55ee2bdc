#!/bin/bash
# Session 29, call 10 (H100; carry .whl/serve and .gpuwork/shared_models): decode attention releasing the
# next kernel after its loop (PAGEDLLM_DECODE_LATE_RELEASE=1) against after its wait (=0) in `bench decode`,
# where its grid is more than one wave: the 1B and Qwen3-0.6B at 128 and 256 rows (two interleaved rounds),
# the 8B at 256 (one).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
M=$PWD/.gpuwork/shared_models J=/tmp/json29j; rm -rf $J; mkdir -p $J
run() {  # model late-release round batches...
  m=$1 t=$2 r=$3; shift 3
  echo "== $m LATE_RELEASE=$t round $r"
  PAGEDLLM_DECODE_LATE_RELEASE=$t timeout 150 python3 -m pagedllm.cli bench decode --model $M/$m.json \
    --load-format dummy --max-model-len 2048 --batch-sizes "$@" --context 512 --steps 32 \
    --output-json $J/$m-$t-$r.json 2>&1 | grep -v -i warn | grep -v "^written" | grep -A3 "^ batch" | tail -n +2
}
for r in 1 2; do
  for t in 1 0; do run llama-3.2-1b $t $r 128 256; run qwen3-0.6b $t $r 128 256; done
done
for t in 1 0; do run llama-3.1-8b $t 1 256; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call10-decode.json
