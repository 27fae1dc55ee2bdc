#!/bin/bash
# Session 21, call 5 (H100; carry .whl/serve): issue 5's kernel table with the prefill rows' graphs
# replayed in turn with SDPA's (graph_ms_interleaved), while nvidia-smi logs the SM clock, power and
# temperature every 100 ms; then session 20's focused prefill script on the engine's launch, for the
# same rows measured one after the other on a GPU that has just run the table.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.max.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv -lms 100 > $OUT/call5-smi.csv 2>&1 &
SMI=$!
date +%T.%N > $OUT/call5-marks.txt
timeout 330 python3 -m pagedllm.cli bench kernels --block-sizes 16 --out $OUT/call5-kernels-table.json 2>&1 \
  | while IFS= read -r line; do echo "$(date +%T.%N) $line"; done | grep -E "(decode|prefill|mixed|device)" | grep -v -i warn > $OUT/call5-table.log
grep -E " prefill " $OUT/call5-table.log | cut -c1-200
date +%T.%N >> $OUT/call5-marks.txt
timeout 100 python3 benchmarks/gpu/session20_prefill_occupancy.py $OUT/call5-focused.json llama 2>&1 | grep -v -i warn
date +%T.%N >> $OUT/call5-marks.txt
kill $SMI
