#!/bin/bash
# Session 15, GPU call 5 (H100; run as a command line, recorded here): a decode layer's forms at 128 and 192
# rows (session15_forms.py), the Llama-3.2-1B and Qwen3-0.6B, with the wide plans of call 2.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
for r in 128 192; do for m in 1b qwen3; do echo "== $m $r"; timeout 200 python3 benchmarks/gpu/session15_forms.py $m $r 2>&1 | tail -38 | awk 'NR<=8 || NR>23'; done; done
