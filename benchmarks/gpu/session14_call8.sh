#!/bin/bash
# Session 14, GPU call 8 (H100): end-to-end `bench throughput` on the Qwen3-0.6B workload (256 prompts,
# uniform 100-1024 in and out), main after session 14 against main at its start (00ecf17, a copy in
# .gpuwork/s14/start), after one warm-up run, two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
START=$PWD/.gpuwork/s14/start; NOW=$PWD
tp() { local dir=$1 to=$2; shift 2; (cd $dir && PYTHONPATH=/tmp/site:$dir timeout $to python3 -m pagedllm.cli bench throughput \
  --load-format dummy --max-model-len 2048 "$@" 2>&1 | grep -v -i warn | grep -E "Throughput|oofline|rror|Traceback"); }
echo "== warm-up"; tp $NOW 150 --model $M/qwen3-0.6b.json --input-len 512 --output-len 8 --num-prompts 64
for run in 1 2; do
  for tree in now start; do
    T=$([ $tree = start ] && echo $START || echo $NOW)
    echo "== qwen3 $tree $run"; tp $T 120 --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 \
      --num-prompts 256 --output-json $OUT/throughput-qwen3-$tree-$run.json
  done
done
