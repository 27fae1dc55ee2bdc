#!/bin/bash
# Session 15, GPU call 9 (H100; run as a command line, recorded here): the sweep of the Llama-3.1-8B's
# linears at 128 rows (session15_linears256.py; call 8's run of it had stopped on a missing model entry).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
SWEEP_BUDGET_S=240 timeout 360 python3 benchmarks/gpu/session15_linears256.py 8b 128 2>&1 | grep -v "^    " | tail -14
