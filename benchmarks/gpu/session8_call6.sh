#!/bin/bash
# Session 8, GPU call 6 (H100): the piecewise graph and CUDA graph tests after the review fixes (capture
# failure cleanup, the graphs' memory reserved in the KV budget); then the saturated 1B server with
# piecewise graphs on and off, interleaved (on, off, on, off).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
timeout 300 python3 -m pytest -v -p no:cacheprovider --durations=8 tests/test_piecewise_graphs.py tests/test_cuda_graphs.py \
  -k "not smollm2" > $OUT/tests.log 2>&1
echo "== tests"; grep -E "^E  |FAILED|passed|failed" $OUT/tests.log | head -20; tail -1 $OUT/tests.log
i=0
for mode in on off on off; do
  i=$((i+1)); flag=$([ $mode = off ] && echo "--piecewise-graph-max-tokens 0" || echo "")
  echo "== $i $mode $(date +%T)"
  (cd benchmarks && timeout 100 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
    --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 --request-rates inf \
    --client-processes 4 --no-offline $flag --name serve-inf-piecewise-$mode-$i 2>&1 | grep -v -i warn | tail -3; \
    cp results/serve-inf-piecewise-$mode-$i.json $OUT/ 2>/dev/null)
done
