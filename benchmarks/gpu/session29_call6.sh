#!/bin/bash
# Session 29, call 6 (H100; carry .whl/serve and .gpuwork/shared_models): the engine's own decode graph
# against a new capture of the same step (Qwen3-0.6B and the 1B at 64 rows, three rounds); then the GPU
# tests of the short-tile rule: decode attention, kernel warm-up, generation in bf16 and the CUDA graphs.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader
timeout 150 python3 benchmarks/gpu/session29_attention_in_step.py $OUT/call6-graphs.json \
  --cases graphs-qwen3-0.6b-64 graphs-llama-3.2-1b-64 2>&1 | grep -v -i warn | grep "^  \|^=="
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_triton_attention.py tests/test_kernel_warmup.py 2>&1 \
  | tail -3 | tee $OUT/call6-tests-attention.log
timeout 260 python3 -m pytest -q -p no:cacheprovider tests/test_triton_generation.py tests/test_cuda_graphs.py \
  -k "not identical_to_reference" 2>&1 | tail -3 | tee $OUT/call6-tests-generation.log
