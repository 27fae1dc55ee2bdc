#!/bin/bash
# Session 25, call 2 (H100; carry .whl/serve and .gpuwork/shared_models): issue 5's whole kernel table
# on main's head-major KV cache (every layout, batch and context; prefill graphs replayed in turn with
# SDPA's), then whole decode steps of the 1B and Qwen3-0.6B at 64 and 256 x 512 again: call 1's 256-row
# steps were 3.5-4.8% slower than session 24's, and its own profiled replays were not.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv -lms 200 > /tmp/smi.csv 2>&1 &
SMI=$!
timeout 360 python3 -m pagedllm.cli bench kernels --block-sizes 16 --out $OUT/call2-kernels-table.json 2>&1 \
  | grep -E "(decode|prefill|mixed|device)" | grep -v -i warn > $OUT/call2-table.log
M=$PWD/.gpuwork/shared_models
for m in llama-3.2-1b qwen3-0.6b; do
  timeout 120 python3 -m pagedllm.cli bench decode --model $M/$m.json --load-format dummy --max-model-len 2048 \
    --batch-sizes 64 256 --context 512 --steps 32 --output-json $OUT/call2-decode-$m.json 2>&1 | grep -v -i warn \
    | grep -v "^written"
done
kill $SMI
# The SM clock and throttle reasons over the call, summarized (the whole log is too long to bring back).
python3 - <<'PY' > $OUT/call2-smi-summary.txt
import collections, csv
rows = list(csv.reader(open("/tmp/smi.csv")))[1:]
clocks = [int(r[1].split()[0]) for r in rows if len(r) > 4 and r[1].strip().split()[0].isdigit()]
reasons = collections.Counter(r[4].strip() for r in rows if len(r) > 4)
print(f"{len(rows)} samples; SM clock min {min(clocks)} median {sorted(clocks)[len(clocks)//2]} max {max(clocks)} MHz")
print("throttle reasons:", dict(reasons))
PY
cat $OUT/call2-smi-summary.txt
