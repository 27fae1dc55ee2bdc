#!/bin/bash
# Session 10, GPU call 5 (H100), on call 4's warm machine: Llama-3.2-1B decode steps with the step's K/V
# stored by the decode kernel ("after") or by a separate launch ("before"), interleaved
# (benchmarks/gpu/session10_ab.py); then the GPU tests call 4 ran out of time for (its logs: no failure).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
dec() { name=$1; flag=$2; shift 2; timeout 100 python3 benchmarks/gpu/session10_ab.py $flag bench decode --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $OUT/$name.json "$@" 2>&1 | grep -v -i warn | tail -3; }
for mode in before after after before; do
  flag=$([ $mode = before ] && echo --separate-kv-write); echo "== 1B $mode"
  dec decode-1b-$mode-$RANDOM "$flag" --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512
done
P="python3 -m pytest -q -p no:cacheprovider"
(timeout 280 $P tests/test_triton_attention.py -k "decode or backend" > $OUT/tests-a.log 2>&1) &
(timeout 280 $P tests/test_triton_generation.py tests/test_cuda_graphs.py tests/test_piecewise_graphs.py tests/test_kernel_warmup.py \
  -k "not smollm2" > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -1 $f; done
