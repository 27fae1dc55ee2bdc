#!/bin/bash
# Session 6, GPU tests (H100) after the prefill change. First a probe of the hang seen in the previous
# call (float32 through TMA, 60 s each), then kernels (compiled, bf16 too), warm-up, CUDA graphs, then
# greedy generation with the Triton backend against the reference backend; -v logs show where a test stops.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
for c in "bf16 128" "bf16 256" "fp32 64"; do
  timeout 60 python3 benchmarks/gpu/session6_fp32_tma_probe.py $c 2>&1 | tail -1; echo "probe $c rc=$?"
done
P="python3 -m pytest -v -p no:cacheprovider --durations=8"
timeout 240 $P tests/test_triton_attention.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py -k "not smollm2" \
  > $OUT/tests-a.log 2>&1
timeout 150 $P tests/test_triton_generation.py > $OUT/tests-b.log 2>&1
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |FAILED|passed|failed|s call" $f | head -14; tail -2 $f; done
