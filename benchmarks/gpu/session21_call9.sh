#!/bin/bash
# Session 21, call 9 (H100; carry .whl/serve): Nsight Compute on our Qwen-layout decode attention and
# SDPA's at 64 x 4k and 256 x 4k (session21_ncu_qwen_decode.py). ncu locks the clocks at base, so its
# durations are longer than a graph replay's.
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD
timeout 300 ncu --profile-from-start off --section SpeedOfLight --section Occupancy --section LaunchStats \
  --section WarpStateStats --metrics dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,\
gpu__time_duration.sum python3 benchmarks/gpu/session21_ncu_qwen_decode.py > $OUT/call9-ncu-qwen-decode.txt 2>&1
grep -E "^\s+[a-zA-Z_]+.*\(|gpu__time_duration|dram__bytes_read|dram__throughput|Grid Size|Block Size|Registers Per|Shared Memory Configuration|Dynamic Shared|Static Shared|Achieved Occupancy|Theoretical Occupancy|Waves Per SM|Stall Long" \
  $OUT/call9-ncu-qwen-decode.txt | head -80
