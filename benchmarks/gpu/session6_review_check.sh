#!/bin/bash
# Session 6, after the review fixes (H100): the new and changed kernel tests compiled (the diagonal TMA
# tile's value mask, shape checks, forward handing over the step's K/V), then the Llama-layout prefill rows
# once more (set c) to see the extra mask cost nothing measurable.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_triton_attention.py \
  -k "finite or from_the_step or backend or rejects or compile" 2>&1 | grep -E "^E  |FAILED|passed|failed" | head
timeout 150 python3 benchmarks/gpu/session6_prefill.py --old .gpuwork/s6/old_prefill.py --repeats 3 --set c \
  --shapes llama:1:4096 llama:16:1024 llama:16:4096 llama:64:1024 --out $OUT/session6-prefill-review.json \
  | grep -E " old | default | sdpa " | cut -c1-84
