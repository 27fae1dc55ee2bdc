#!/bin/bash
# Session 18, GPU call 3 (H100), PREPARED, NOT RUN: issue 5's decode table with and without carried block
# ids. main: carried where one KV head of <= 64 dims runs in one split (session 18's default); off:
# `--no-carry-block-ids` (the table before session 18); carry: `--carry-block-ids` on every plan (splits
# and joint KV heads too) in 32-token tiles; carry64: the same in 64-token tiles. Both layouts, batch
# 16/64/256 x context 1k/4k/16k, block size 16, each row beside SDPA; the prefill part cut to one small
# row (the two mixed-batch rows still run). Up to 140 s a variant. Questions: does any row of main's default get slower than off (the Qwen layout's one-split rows at
# 256 sequences), and do carried ids lift the Qwen layout's split rows (.83-.94 of copy bandwidth with one
# tile in flight per program) past SDPA?
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
for v in ${*:-main off carry carry64}; do
  case $v in main) f="";; off) f="--no-carry-block-ids";; carry) f="--carry-block-ids";;
    carry64) f="--carry-block-ids --decode-block-n 64";; *) echo "unknown variant $v"; exit 2;; esac
  echo "== table $v"
  timeout 140 python3 -m pagedllm.cli bench kernels --heads llama qwen --batches 16 64 256 \
    --contexts 1024 4096 16384 --block-sizes 16 --prefill-shapes 1x128 $f --out $OUT/call3-kernels-$v.json 2>&1 \
    | grep -E "graph_frac|^device" | grep -v -i warn
done
