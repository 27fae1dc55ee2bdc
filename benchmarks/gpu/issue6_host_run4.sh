#!/bin/bash
# Issue 6 (host overhead), GPU run 4 (not run yet; for the lead): does async scheduling lose on the
# Qwen3-0.6B nano-vllm workload? Run 3 measured async 11,428 vs synchronous 14,479 output tok/s, with
# the async run first after a warm-up of other shapes (512 in, 16 out), so it may have compiled Triton
# kernels in its timed region. Here the warm-up is the workload itself, and the two modes alternate.
# Run from the repo root with the branch copied to .gpuwork/issue6.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
ROOT=$PWD
M=$ROOT/.gpuwork/shared_models
export PYTHONUNBUFFERED=1
cd $ROOT/.gpuwork/issue6 && export PYTHONPATH=/tmp/site:$PWD
tp() { timeout 50 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "$@" 2>&1 | grep -v -i warn | grep -E "Throughput|oofline|rror"; }
Q="--model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 --num-prompts 256"
echo "== warm-up (the workload itself)"; tp $Q --no-async-scheduling
for i in 1 2; do
  echo "== async $i"; tp $Q --output-json $OUT/throughput-qwen3-0.6b-async-$i.json
  echo "== synchronous $i"; tp $Q --no-async-scheduling --output-json $OUT/throughput-qwen3-0.6b-sync-$i.json
done
