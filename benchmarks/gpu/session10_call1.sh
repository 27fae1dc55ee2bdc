#!/bin/bash
# Session 10, GPU call 1 (H100): decode attention's launch order (benchmarks/gpu/session10_decode_order.py),
# then Llama-3.2-1B decode steps with the sequence's KV heads launched together or not, interleaved.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 300 python3 benchmarks/gpu/session10_decode_order.py --out $OUT/decode-order.json 2>&1 | grep -v -i warn
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 100 python3 -m pagedllm.cli bench decode --load-format dummy --max-model-len 2048 \
  --steps 32 --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512 --output-json $OUT/$name.json 2>&1 \
  | grep -v -i warn | tail -3; }
for hf in 0 1 1 0; do echo "== heads_fastest=$hf"; PAGEDLLM_DECODE_HEADS_FASTEST=$hf dec decode-1b-hf$hf-$RANDOM; done
