#!/bin/bash
# Session 8, GPU call 3 (H100): piecewise graph tests (Llama and Qwen3 decoders), a cProfile of the piecewise
# step's host work on the 1B shape, and eager against piecewise steps on the Qwen3-0.6B shape.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
timeout 300 python3 -m pytest -v -p no:cacheprovider --durations=8 tests/test_piecewise_graphs.py > $OUT/tests.log 2>&1
echo "== tests"; grep -E "^E  |FAILED|passed|failed" $OUT/tests.log | head -20; tail -1 $OUT/tests.log
echo "== 1B profile"
timeout 120 python3 benchmarks/gpu/session8_mixed_steps.py --model $M/llama-3.2-1b.json --repeats 10 \
  --out $OUT/mixed-1b-profiled.json --profile $OUT/piecewise-1b-cprofile.txt 2>&1 | grep -v -i warn | tail -3
head -45 $OUT/piecewise-1b-cprofile.txt
echo "== qwen3"
timeout 150 python3 benchmarks/gpu/session8_mixed_steps.py --model $M/qwen3-0.6b.json --out $OUT/mixed-qwen3.json 2>&1 \
  | grep -v -i warn | tail -8
