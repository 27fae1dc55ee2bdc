#!/bin/bash
# Session 14, GPU call 1 (H100): where Qwen3-0.6B's decode step at 64 x 512 spends its GPU time on main
# (torch.profiler over 5 graph replays, PDL on: the engine's launches; the spans overlap under PDL), then
# the sweep of skinny plans for Qwen3-0.6B's four linears at 64 rows (benchmarks/gpu/session14_linears.py).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
echo "== qwen3 profile"
timeout 150 python3 -m pagedllm.cli bench decode --load-format dummy --max-model-len 2048 --steps 32 \
  --model $M/qwen3-0.6b.json --batch-sizes 64 --context 512 --output-json $OUT/decode-qwen3-b64.json \
  --profile-dir $OUT/prof-qwen3 2>&1 | grep -v -i warn | tail -2
echo "== sweep"
SWEEP_BUDGET_S=330 timeout 400 python3 benchmarks/gpu/session14_linears.py main-00ecf17 2>&1 | tail -150
