#!/bin/bash
# Session 8, GPU call 1 (H100): piecewise graphs for mixed steps. The GPU tests that touch graphs, attention
# warm-up and generation; then eager against piecewise steps on the 1B shape; then the offline 1B workload.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
M=$PWD/.gpuwork/shared_models
P="python3 -m pytest -v -p no:cacheprovider --durations=8"
timeout 300 $P tests/test_piecewise_graphs.py tests/test_cuda_graphs.py tests/test_kernel_warmup.py -k "not smollm2" \
  > $OUT/tests-a.log 2>&1
echo "== tests"; grep -E "^E  |FAILED|passed|failed|s call" $OUT/tests-a.log | head -20; tail -2 $OUT/tests-a.log
echo "== mixed steps"
timeout 150 python3 benchmarks/gpu/session8_mixed_steps.py --model $M/llama-3.2-1b.json --out $OUT/mixed-1b.json 2>&1 \
  | grep -v -i warn | tail -12
echo "== offline 1B"
timeout 100 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 --model $M/llama-3.2-1b.json \
  --input-len 512 --output-len 128 --num-prompts 256 --output-json $OUT/offline-1b.json 2>&1 | grep -E "Throughput|oofline|rror|piecewise"
