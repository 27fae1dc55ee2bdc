#!/bin/bash
# Session 20, GPU call 1 (H100; carry .whl/serve). The Llama layout's batched prefill against cuDNN:
#   1. session20_prefill_occupancy.py: plans that fit three or four programs an SM (register caps,
#      32-key tiles), beside the default, five shapes.
#   2. session 17's prepared grid with the KV heads fastest (prefill-heads-first-experiment.diff, never
#      run), on a tree copy, the default plan, both orders.
#   3. Nsight Compute on one launch of ours and of SDPA at 16 x 1k (ncu locks the clocks at base).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
echo "== 1. plans"
PYTHONPATH=/tmp/site:$PWD timeout 240 python3 benchmarks/gpu/session20_prefill_occupancy.py \
  $OUT/call1-occupancy.json 2>&1 | grep -v -i warn
echo "== 2. heads first"
rm -rf /tmp/hf && mkdir -p /tmp/hf && cp -r pagedllm benchmarks /tmp/hf/
(cd /tmp/hf && patch -s --batch -p0 < benchmarks/results/session17/prefill-heads-first-experiment.diff) || exit 1
for hf in 0 1 0 1; do
  echo "-- S17_HEADS_FIRST=$hf"
  (cd /tmp/hf && S17_HEADS_FIRST=$hf PYTHONPATH=/tmp/site:/tmp/hf timeout 90 python3 \
    benchmarks/gpu/session20_prefill_occupancy.py $OUT/call1-heads-first-$hf.json default 2>&1 | grep -v -i warn)
done
echo "== 3. ncu"
PYTHONPATH=/tmp/site:$PWD timeout 200 ncu --profile-from-start off --section SpeedOfLight \
  --section ComputeWorkloadAnalysis --section Occupancy --section LaunchStats --section WarpStateStats \
  --section SchedulerStats --section MemoryWorkloadAnalysis \
  python3 benchmarks/gpu/session20_ncu_prefill.py 16 1024 > $OUT/call1-ncu-prefill.txt 2>&1
grep -E "^\s+[a-z_]+.*\(|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Compute \(SM\) Throughput|Block Limit|Issue Slots Busy|Stall|Executed Ipc|DRAM Throughput" $OUT/call1-ncu-prefill.txt | head -60
