#!/bin/bash
# Session 15, GPU call 8 (H100): why the Llama-3.1-8B's decode step at 128 rows is slower on the wide plans
# (call 7): its layer's forms at 128 rows (session15_forms.py) and a sweep of its linears at 128 rows.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 200 python3 benchmarks/gpu/session15_forms.py 8b 128 2>&1 | tail -38 | awk 'NR<=8 || NR>23'
SWEEP_BUDGET_S=220 timeout 330 python3 benchmarks/gpu/session15_linears256.py 8b 128 2>&1 | grep -v "^    " | tail -14
