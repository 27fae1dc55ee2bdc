#!/bin/bash
# Session 20, GPU call 3 (H100; carry .whl/serve): where the Llama layout's prefill program spends the
# time that does not scale with its keys (1k-token sequences lose 29% of the efficiency of 4k ones).
# A tree copy with results/session20/prefill-parts-experiment.diff, whose S20_PREFILL bits take parts
# out (timing only: 1 and 8 give wrong outputs): 1 the masked diagonal tile, 2 its V zeroing, 4 the
# cached-prefix loops (none here), 8 the diagonal's score mask. Default plan, Llama layout, 5 shapes.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
rm -rf /tmp/parts && mkdir -p /tmp/parts && cp -r pagedllm benchmarks /tmp/parts/
(cd /tmp/parts && patch -s --batch -p1 < benchmarks/results/session20/prefill-parts-experiment.diff) || exit 1
for v in 0 1 2 4 8 6 0; do
  echo "== S20_PREFILL=$v"
  (cd /tmp/parts && S20_PREFILL=$v PYTHONPATH=/tmp/site:/tmp/parts timeout 100 python3 \
    benchmarks/gpu/session20_prefill_occupancy.py $OUT/call3-parts-$v.json llama 2>&1 | grep -v -i warn)
done
