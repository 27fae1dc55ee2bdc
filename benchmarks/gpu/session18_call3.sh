#!/bin/bash
# Session 18, GPU call 3 (H100), PREPARED, NOT RUN: issue 5's decode table with the block ids carried a
# tile ahead (`pagedllm bench kernels --carry-block-ids`, every plan, splits and joint KV heads included)
# against main's launch, and in 32-token tiles. Both layouts, batch 16/64/256 x context 1k/4k/16k, block
# size 16, each row beside SDPA; the prefill part cut to one small row. The Qwen layout's miss (it does
# not beat SDPA at 64 x 4k and above) is the question: two tiles in flight per program might lift it
# from .83-.94 of copy bandwidth.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
for v in main carry carry32; do
  case $v in main) f="";; carry) f="--carry-block-ids";; carry32) f="--carry-block-ids --decode-block-n 32";; esac
  echo "== table $v"
  timeout 180 python3 -m pagedllm.cli bench kernels --heads llama qwen --batches 16 64 256 \
    --contexts 1024 4096 16384 --block-sizes 16 --prefill-shapes 1x128 $f --out $OUT/call3-kernels-$v.json 2>&1 \
    | grep -E "graph_frac|^device" | grep -v -i warn
done
