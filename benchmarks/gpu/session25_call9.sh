#!/bin/bash
# Session 25, call 9 (H100; carry .whl/serve and .gpuwork/shared_models): the offline token budget's new
# default (16384 on this GPU) checked by its test, then issue 6's 1B table with it (pagedllm, HF generate
# and generate_batch in one process), then the Qwen3-0.6B workload (two rounds) and the 8B 256 x (1024,
# 128) workload at --max-num-batched-tokens 8192 (the old default) against the new default.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_step_token_budget.py 2>&1 | tail -2
M=$PWD/.gpuwork/shared_models
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "^Throughput|oofline|rror|hf_|Traceback"; }
echo "== 1b with peers"; tp 200 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
  --peers generate generate_batch --output-json $OUT/call9-table-llama-3.2-1b.json
for r in 1 2; do
  for t in 8192 default; do
    b=(); [ $t = 8192 ] && b=(--max-num-batched-tokens 8192)
    echo "== qwen3 $t round $r"; tp 90 --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 \
      --num-prompts 256 "${b[@]}" --output-json $OUT/call9-qwen3-$t-$r.json
  done
done
for t in 8192 default; do
  b=(); [ $t = 8192 ] && b=(--max-num-batched-tokens 8192)
  echo "== 8b $t"; tp 120 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 128 --num-prompts 256 \
    "${b[@]}" --output-json $OUT/call9-8b-$t.json
done
