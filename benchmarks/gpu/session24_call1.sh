#!/bin/bash
# Session 24, call 1 (H100; carry .whl/serve and .gpuwork/shared_models): the 1B's linears over weights
# in padded rows (session24_padded_weights.py), then whole decode steps of the 1B and Qwen3-0.6B at 64
# and 256 x 512 with main's weights and padded ones (session24_decode.py), two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 150 python3 benchmarks/gpu/session24_padded_weights.py $OUT/call1-padded-weights.json 2>&1 | grep -v -i warn
S24_PAD_HEAD=1 bash benchmarks/gpu/session24_steps.sh $OUT/call1-decode.json S24_PAD ${VARIANTS:-0 64 8}
