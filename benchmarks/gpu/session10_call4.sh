#!/bin/bash
# Session 10, GPU call 4 (H100): the decode kernel stores the step's K/V itself (pure-decode steps: one
# launch fewer per layer). GPU tests of the kernels, warm-up, CUDA and piecewise graphs and generation
# against the reference backend; then Llama-3.2-1B decode steps before/after interleaved
# (benchmarks/gpu/session10_ab.py).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
P="python3 -m pytest -v -p no:cacheprovider --durations=8"
(timeout 330 $P tests/test_triton_attention.py tests/test_kernel_warmup.py tests/test_cuda_graphs.py \
  tests/test_piecewise_graphs.py -k "not smollm2" > $OUT/tests-a.log 2>&1) &
(timeout 330 $P tests/test_triton_generation.py tests/test_skinny_linear.py > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -1 $f; done
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 100 python3 benchmarks/gpu/session10_ab.py "$@" bench decode --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $OUT/$name.json 2>&1 | grep -v -i warn | tail -3; }
for mode in before after after before; do
  flag=$([ $mode = before ] && echo --separate-kv-write); echo "== 1B $mode"
  dec decode-1b-$mode-$RANDOM $flag --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512
done
