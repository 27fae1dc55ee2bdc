#!/bin/bash
# Session 6, third GPU call (H100): the GPU tests touching attention (kernels, generation equal to the
# reference backend, warm-up, CUDA graphs), then the prefill A/B: the previous kernel against the new
# defaults (the step's K/V by TMA, 64-key tiles three stages deep).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
P="python3 -m pytest -q -p no:cacheprovider"
timeout 150 $P tests/test_triton_attention.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py -k "not smollm2" \
  > $OUT/tests-a.log 2>&1
timeout 150 $P tests/test_triton_generation.py > $OUT/tests-b.log 2>&1
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |^FAILED|passed|failed" $f | head -12; done
timeout 240 python3 benchmarks/gpu/session6_prefill.py --old .gpuwork/s6/old_prefill.py --repeats 3 --set c \
  --out $OUT/session6-prefill-c.json | cut -c1-84
