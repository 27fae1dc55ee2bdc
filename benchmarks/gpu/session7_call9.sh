#!/bin/bash
# Session 7, GPU call 9 (H100): async admissions A/B, interleaved: "pre" is 220eedf (admissions fall back to
# synchronous steps; .gpuwork/s7/pre), "new" schedules them ahead. Llama-3.2-1B 256 x (512, 128) twice each,
# then Qwen3-0.6B (100-1024 in and out) and Llama-3.1-8B 256 x (1024, 128) once each.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
PRE=$PWD/.gpuwork/s7/pre; NEW=$PWD
tp() { tree=$1; to=$2; shift 2; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout $to python3 -m pagedllm.cli bench throughput \
  --load-format dummy --max-model-len 2048 "$@" 2>&1 | grep -v -i warn | grep -E "Throughput|oofline|rror|Traceback"); }
echo "== warm-up"; tp $NEW 150 --model $M/llama-3.2-1b.json --input-len 512 --output-len 8 --num-prompts 64
for run in 1 2; do for tree in pre new; do
  T=$([ $tree = pre ] && echo $PRE || echo $NEW)
  echo "== 1B $tree $run"; tp $T 100 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
    --output-json $OUT/ab-1b-$tree-$run.json
done; done
for tree in pre new; do
  T=$([ $tree = pre ] && echo $PRE || echo $NEW)
  echo "== qwen3 $tree"; tp $T 100 --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 --num-prompts 256 \
    --output-json $OUT/ab-qwen3-$tree.json
done
