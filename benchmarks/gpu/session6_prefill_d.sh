#!/bin/bash
# Session 6, fourth GPU call (H100): prefill tiles of 64 rows (two programs per SM) by pointers and by TMA.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 400 python3 benchmarks/gpu/session6_prefill.py --old .gpuwork/s6/old_prefill.py --repeats 3 --set d \
  --out $OUT/session6-prefill-d.json | cut -c1-80
