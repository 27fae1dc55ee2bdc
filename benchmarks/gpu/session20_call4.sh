#!/bin/bash
# Session 20, GPU call 4 (H100; carry .whl/serve): the prefill kernel told what its sequences hold
# (no cached tokens: no loops over the cache; every sequence at least a key tile long: the diagonal box
# shifted back inside its sequence, no values zeroed), as the backend now tells it, against the kernel
# before (a tree copy with results/session20/prefill-facts.diff reversed), two interleaved rounds, both
# layouts. Then the GPU tests of the prefill kernel, the backend, the warm-up and generation.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
rm -rf /tmp/before && mkdir -p /tmp/before && cp -r pagedllm benchmarks /tmp/before/
(cd /tmp/before && patch -s --batch -R -p1 < benchmarks/results/session20/prefill-facts.diff) || exit 1
for round in 1 2; do
  echo "== round $round: before"
  (cd /tmp/before && PYTHONPATH=/tmp/site:/tmp/before timeout 100 python3 \
    benchmarks/gpu/session20_prefill_occupancy.py $OUT/call4-before-$round.json default 2>&1 | grep -v -i warn)
  echo "== round $round: told its facts"
  PYTHONPATH=/tmp/site:$PWD timeout 100 python3 benchmarks/gpu/session20_prefill_occupancy.py \
    $OUT/call4-after-$round.json default 2>&1 | grep -v -i warn
done
export PYTHONPATH=/tmp/site:$PWD
P="python3 -m pytest -q -p no:cacheprovider --durations=4"
timeout 150 $P tests/test_triton_generation.py > $OUT/call4-tests-generation.log 2>&1
(timeout 200 $P tests/test_triton_attention.py -k "prefill or mixed or facts or finite or backend or hold" \
  > $OUT/call4-tests-attention.log 2>&1) &
(timeout 200 $P tests/test_kernel_warmup.py tests/test_piecewise_graphs.py > $OUT/call4-tests-warmup.log 2>&1) &
wait
for f in $OUT/call4-tests-*.log; do
  echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -2 $f
done
