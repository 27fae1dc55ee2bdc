#!/bin/bash
# Session 19, PREPARED FOR THE NEXT DEVICE SESSION, NOT RUN (H100; carry .whl/serve). Two questions:
#   1. Issue 5's whole table from main (block size 16: both layouts, batch 1/16/64/256 x context
#      128/1k/4k/16k, the six prefill shapes and the mixed rows), now with prefill's graph-replayed GPU
#      times beside do_bench's (session 19's last full table is the seventh session's).
#   2. Why does the prefill tile map slow the Llama layout's batches: its tile order, or a q_off the
#      compiler no longer knows to be a multiple of 16? Session 19's call 9 meant to test the order, but
#      its reordering never reached the script. session19_tile_map.py (the search, the map with the
#      longest tiles of all sequences first, the map in the search's order; three head layouts) on a copy
#      of the tree with results/session19/prefill-tile-map-experiment.diff applied (as calls 8-9 ran),
#      then with prefill-tile-map-hinted.diff (the same plus the hint).
# ~2 min for 1, ~1 min each for 2.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
echo "== 1. issue 5's table"
PYTHONPATH=/tmp/site:$PWD timeout 420 python3 -m pagedllm.cli bench kernels --block-sizes 16 \
  --out $OUT/next-kernels-table.json 2>&1 | grep -E "^(decode|prefill|mixed|device)|rror" | grep -v -i warn
for d in experiment hinted; do
  echo "== 2. the tile map ($d diff): the search, the map, the map in the search's order"
  rm -rf /tmp/map && mkdir -p /tmp/map && cp -r pagedllm benchmarks tests /tmp/map/
  (cd /tmp/map && patch -s --batch -p1 < benchmarks/results/session19/prefill-tile-map-$d.diff) || exit 1
  (cd /tmp/map && PYTHONPATH=/tmp/site:/tmp/map timeout 120 python3 benchmarks/gpu/session19_tile_map.py \
    $OUT/next-tile-map-$d.json 2>&1 | grep -v -i warn)
done
