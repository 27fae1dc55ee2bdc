#!/bin/bash
# Session 17, GPU call 5 (H100): Nsight Compute on one decode-attention launch per layout at a decode
# step's shape (session17_ncu_decode.py: the 1B and Qwen3-0.6B layouts, 64 x 528). ncu locks the clocks
# at base (1.45 GHz here), so its durations are longer than a graph replay's.
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD
timeout 300 ncu --profile-from-start off --section SpeedOfLight --section MemoryWorkloadAnalysis \
  --section MemoryWorkloadAnalysis_Tables --section Occupancy --section LaunchStats --section WarpStateStats \
  --section SchedulerStats --metrics dram__bytes_read.sum,lts__t_sectors_srcunit_tex_op_read.sum,\
lts__t_sector_hit_rate.pct,dram__throughput.avg.pct_of_peak_sustained_elapsed,gpu__time_duration.sum \
  python3 benchmarks/gpu/session17_ncu_decode.py > $OUT/ncu-decode.txt 2>&1
