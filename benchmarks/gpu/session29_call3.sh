#!/bin/bash
# Session 29, call 3 (H100; carry .whl/serve and .gpuwork/shared_models): where head dim 128's 32-token
# decode tiles stop paying in whole steps: Qwen3-0.6B at 32-112 rows, the 8B and Qwen2.5-7B at 128, with
# each compiled decode kernel's registers and shared memory.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
timeout 540 python3 benchmarks/gpu/session29_attention_in_step.py $OUT/call3-tiles-in-step.json --cases \
  tiles-qwen3-0.6b-32 tiles-qwen3-0.6b-48 tiles-qwen3-0.6b-80 tiles-qwen3-0.6b-96 tiles-qwen3-0.6b-112 \
  tiles-llama-3.1-8b-128 tiles-qwen2.5-7b-128 2>&1 | grep -v -i warn | grep "^  \|^=="
python3 - <<'PY'
import json, os
d = json.load(open(os.environ["OUT"] + "/call3-tiles-in-step.json"))
for case, r in d["cases"].items():
    print(case, r["engine_plan"], [(c["n_regs"], c["n_spills"], c["shared"], c["num_warps"], c["num_stages"]) for c in r["compiled"]])
PY
