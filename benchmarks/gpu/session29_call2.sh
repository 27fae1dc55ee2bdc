#!/bin/bash
# Session 29, call 2 (H100; carry .whl/serve and .gpuwork/shared_models): head dim 128 read in 32-token
# decode tiles (the default after call 1) against 64 before: whole steps (in-step graphs, three rounds) for
# Qwen3-0.6B at 64/128/256 rows, the 8B at 64/256, Qwen2.5-7B at 64; the kernel alone at 16-256 x 512-16k
# for the Qwen3-0.6B and 8B layouts (bench kernels, both tiles); the decode attention GPU tests.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_triton_attention.py -k decode 2>&1 \
  | grep -v -i warn | tail -5 | tee $OUT/call2-tests.log
timeout 300 python3 benchmarks/gpu/session29_attention_in_step.py $OUT/call2-tiles-in-step.json --cases \
  ab-qwen3-0.6b-64 ab-qwen3-0.6b-128 ab-qwen3-0.6b-256 ab-llama-3.1-8b-64 ab-llama-3.1-8b-256 ab-qwen2.5-7b-64 \
  2>&1 | grep -v -i warn | grep "^  \|^=="
for n in 64 32; do
  echo "== bench kernels, decode tile $n"
  timeout 80 python3 -m pagedllm.cli bench kernels --heads qwen3-0.6b llama --batches 16 64 256 \
    --contexts 512 4096 16384 --block-sizes 16 --prefill-shapes 1x128 --decode-block-n $n \
    --out $OUT/call2-kernels-n$n.json 2>&1 | grep -v -i warn | grep -i "decode" | tail -20
done
