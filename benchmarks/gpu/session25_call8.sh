#!/bin/bash
# Session 25, call 8 (H100; carry .whl/serve and .gpuwork/shared_models): where the 1B workload's time goes
# (the step trace of one run, summarized) and whether a larger token budget a step (fewer, larger prefill
# steps) moves its throughput: --max-num-batched-tokens 8192 (the default here), 16384 and 32768, three rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models J=/tmp/json25c; rm -rf $J /tmp/trace*; mkdir -p $J
run() { timeout 100 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 \
  --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 "$@" 2>&1 | grep -v -i warn \
  | grep -E "^Throughput|rror|Traceback"; }
echo "== traced run (8192)"; PAGEDLLM_STEP_TRACE=/tmp/trace run --max-num-batched-tokens 8192
python3 benchmarks/summarize_step_trace.py /tmp/trace.* 2>&1 | tail -30 | tee $OUT/call8-trace-summary.txt
for r in 1 2 3; do
  for t in 8192 16384 32768; do
    printf "== %s round %s: " $t $r; run --max-num-batched-tokens $t --output-json $J/mbt$t-$r.json
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call8-token-budget.json
