#!/bin/bash
# Session 15, GPU call 4 (H100): a decode layer's linears and norms at 256 rows in the engine's forms,
# without attention: wide skinny launches against cuBLAS and the separate kernels, per form and chained
# (benchmarks/gpu/session15_forms.py), the Llama-3.2-1B and Qwen3-0.6B.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 250 python3 benchmarks/gpu/session15_forms.py 1b 256 2>&1 | tail -40
timeout 250 python3 benchmarks/gpu/session15_forms.py qwen3 256 2>&1 | tail -40
