#!/bin/bash
# Session 16, GPU call 3 (H100): a bare TMA matrix product against cuBLAS on the 1B's four linears at 256 rows
# (benchmarks/gpu/session16_tma_gemm.py), 240 s of sweep.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
SWEEP_BUDGET_S=240 timeout 400 python3 benchmarks/gpu/session16_tma_gemm.py 1b 256 2>&1 | grep -v -i warn
