#!/bin/bash
# Session 6, GPU tests (H100) after the prefill change: kernels (compiled, bf16 too), warm-up, CUDA graphs,
# then greedy generation with the Triton backend against the reference backend; -v logs show where a test
# stops. (Two earlier calls ran out of time: float32 compiles of the step-K/V kernel took ~2.5x longer, and
# benchmarks/gpu/session6_fp32_tma_probe.py showed float32 through TMA finishing, so no hang.)
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
P="python3 -m pytest -v -p no:cacheprovider --durations=8"
(timeout 480 $P tests/test_triton_attention.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py -k "not smollm2" \
  > $OUT/tests-a.log 2>&1) &
(timeout 480 $P tests/test_triton_generation.py > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |FAILED|passed|failed|s call" $f | head -14; tail -2 $f; done
