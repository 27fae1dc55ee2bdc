#!/bin/bash
# Session 7, GPU call 6 (H100): the official kernel table again (`pagedllm bench kernels --block-sizes 16`), so
# benchmarks/results/kernels-h100.json shows the sixth session's prefill kernel (it still held the third's).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 560 python3 -m pagedllm.cli bench kernels --block-sizes 16 --out $OUT/kernels-h100.json 2>&1 | grep -v -i warn | tail -45
