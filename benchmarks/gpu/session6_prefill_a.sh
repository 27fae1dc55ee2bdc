#!/bin/bash
# Session 6, first GPU call (H100): the Triton attention tests (prefill reading the step's K/V by
# pointers and TMA, compiled, bf16 too), then the prefill variant sweep against SDPA.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== tests"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_triton_attention.py -k "prefill or backend or compile" \
  2>&1 | grep -E "^E  |^FAILED|passed|failed|error" | head -20
echo "== sweep"
timeout 330 python3 benchmarks/gpu/session6_prefill.py --old .gpuwork/s6/old_prefill.py --repeats 3 \
  --out $OUT/session6-prefill-a.json
