#!/bin/bash
# Session 6, second GPU call (H100): the Triton attention tests (log kept this time), then the second
# prefill sweep (around the first one's winners) and the host cost of a launch, pointers vs TMA.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_triton_attention.py -k "prefill or backend or compile" \
  > $OUT/tests.log 2>&1
grep -E "^E  |^FAILED|passed|failed|error" $OUT/tests.log | head -20
timeout 330 python3 benchmarks/gpu/session6_prefill.py --old .gpuwork/s6/old_prefill.py --repeats 3 --set b \
  --out $OUT/session6-prefill-b.json | grep -v "^$"
