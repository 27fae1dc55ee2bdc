#!/bin/bash
# Session 29, call 4 (H100; carry .whl/serve and .gpuwork/shared_models): the step's chain (bench.step_profile)
# with head dim 128 in 64- and 32-token decode tiles, Qwen3-0.6B at 64 rows (32 faster) and 112 (32 slower):
# which kernels' charges move.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
timeout 400 python3 benchmarks/gpu/session29_attention_in_step.py $OUT/call4-chains.json --profile --rounds 2 \
  --cases tiles-qwen3-0.6b-64 tiles-qwen3-0.6b-112 2>&1 | grep -v -i warn | grep "^  \|^=="
python3 - <<'PY'
import json, os, collections
d = json.load(open(os.environ["OUT"] + "/call4-chains.json"))
for case, r in d["cases"].items():
    for name, row in r["rows"].items():
        sums, counts = collections.defaultdict(float), collections.Counter()
        for link in row.get("chain", []):
            sums[link["name"][:40]] += link["charge_us"]; counts[link["name"][:40]] += 1
        total = sum(sums.values())
        print(f"{case} {name}: chain {total:.1f} us")
        for k in sorted(sums, key=lambda k: -sums[k]):
            print(f"   {k:40s} n={counts[k]:3d} total {sums[k]:8.1f} per {sums[k]/counts[k]:7.2f}")
PY
