#!/bin/bash
# Session 20, GPU call 2 (H100; carry .whl/serve): the prefill kernel's sequence search in one round of
# loads (the tile's sequence, start, end and length from the same chunk of starts and lengths), against
# the search before it (a tree copy with results/session20/prefill-one-load-search.diff reversed), two
# interleaved rounds, both head layouts, plus 64 x 32 tiles under 168 registers on the new kernel. Then
# the GPU tests of the prefill kernel and of generation against the reference backend.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
rm -rf /tmp/before && mkdir -p /tmp/before && cp -r pagedllm benchmarks /tmp/before/
(cd /tmp/before && patch -s --batch -R -p1 < benchmarks/results/session20/prefill-one-load-search.diff) || exit 1
for round in 1 2; do
  echo "== round $round: before"
  (cd /tmp/before && PYTHONPATH=/tmp/site:/tmp/before timeout 120 python3 \
    benchmarks/gpu/session20_prefill_occupancy.py $OUT/call2-before-$round.json default 2>&1 | grep -v -i warn)
  echo "== round $round: one-load search"
  PYTHONPATH=/tmp/site:$PWD timeout 150 python3 benchmarks/gpu/session20_prefill_occupancy.py \
    $OUT/call2-after-$round.json two 2>&1 | grep -v -i warn
done
export PYTHONPATH=/tmp/site:$PWD
P="python3 -m pytest -q -p no:cacheprovider --durations=4"
(timeout 200 $P tests/test_triton_generation.py > $OUT/call2-tests-generation.log 2>&1) &
(timeout 200 $P tests/test_triton_attention.py -k "prefill or mixed" > $OUT/call2-tests-prefill.log 2>&1) &
wait
for f in $OUT/call2-tests-*.log; do
  echo "== $f"; grep -E "^E  |FAILED|passed|failed" $f | head -14; tail -2 $f
done
