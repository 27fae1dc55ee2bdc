#!/bin/bash
# Session 13, GPU call 4 (H100): decode attention of the 1B layout at batch 64 split over the context
# (benchmarks/gpu/session13_split_sweep.py).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
timeout 400 python3 benchmarks/gpu/session13_split_sweep.py --out $OUT/call4-split-sweep.json 2>&1 | grep -v -i warn | tail -80
