#!/bin/bash
# Session 32, call 3 (H100; carry .whl/serve, .gpuwork/shared_models and ab_base = `git archive cfe4d79
# pagedllm`, the end of session 29's code): did the decode steps' GPU time move since session 29? Call 1's
# harness read the 1B's 64-row step at 1.580 ms (1.33x) where session 29's read 1.520 (1.28x). `bench
# decode` on both trees, interleaved (main, base, base, main), the 1B at 64 and 256 rows and Qwen3-0.6B at 64.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
M=$PWD/.gpuwork/shared_models J=/tmp/json32c; rm -rf $J; mkdir -p $J
run() {  # tree round model batches...
  tree=$1 r=$2 m=$3; shift 3
  if [ $tree = main ]; then src=$PWD; else src=$PWD/ab_base; fi
  echo "== $tree round $r $m"
  PYTHONPATH=/tmp/site:$src timeout 150 python3 -m pagedllm.cli bench decode --model $M/$m.json \
    --load-format dummy --max-model-len 2048 --batch-sizes "$@" --context 512 --steps 32 \
    --output-json $J/$m-$tree-$r.json 2>&1 | grep -v -i warn | grep -v "^written" | grep -A3 "^ batch" | tail -n +2
}
r=0
for t in main base base main; do
  r=$((r + 1))
  run $t $r llama-3.2-1b 64 256
  run $t $r qwen3-0.6b 64
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call3-decode.json
