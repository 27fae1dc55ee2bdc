#!/bin/bash
# Session 12, GPU call 14 (H100): end-to-end `bench throughput`, main after session 12 against main at the end
# of session 11 (84f6ff5, a copy in .gpuwork/s12/s11): Qwen3-0.6B (256 prompts, uniform 100-1024 in and out)
# and Llama-3.2-1B 256 x (512, 128), after one warm-up run, interleaved. (Call 14's tp() overwrote $tree, so
# its 1B rows were named after the folders; call 15 (ONLY_1B=1) runs the 1B twice more, s11 first.)
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
S11=$PWD/.gpuwork/s12/s11; NOW=$PWD
tp() { local dir=$1 to=$2; shift 2; (cd $dir && PYTHONPATH=/tmp/site:$dir timeout $to python3 -m pagedllm.cli bench throughput \
  --load-format dummy --max-model-len 2048 "$@" 2>&1 | grep -v -i warn | grep -E "Throughput|oofline|rror|Traceback"); }
echo "== warm-up"; tp $NOW 150 --model $M/llama-3.2-1b.json --input-len 512 --output-len 8 --num-prompts 64
if [ "${ONLY_1B:-0}" = 1 ]; then
  for run in 1 2; do for tree in s11 now; do
    T=$([ $tree = s11 ] && echo $S11 || echo $NOW)
    echo "== 1B $tree $run"; tp $T 100 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
      --output-json $OUT/throughput-1b-$tree-$run.json
  done; done
  exit 0
fi
for tree in now s11; do
  T=$([ $tree = s11 ] && echo $S11 || echo $NOW)
  echo "== qwen3 $tree"; tp $T 120 --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 --num-prompts 256 \
    --output-json $OUT/throughput-qwen3-$tree.json
  echo "== 1B $tree"; tp $T 100 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
    --output-json $OUT/throughput-1b-$tree.json
done
