#!/bin/bash
# Session 22, call 4: Nsight Compute on the Gluon probes (sequential, warp-specialized with and without
# turn-taking) and SDPA at 16 x 32 x 1k: where the consumers' warps stall, how busy the tensor pipe is.
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl
export PYTHONPATH=/tmp/site:$PWD
timeout 300 ncu --profile-from-start off --section SpeedOfLight --section ComputeWorkloadAnalysis \
  --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats \
  --metrics sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active \
  python3 benchmarks/gpu/session22_ncu_gluon.py > $OUT/call4-ncu-gluon.txt 2>&1
grep -E "^\s+[_a-zA-Z]+.*\(|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Issue Slots Busy|Stall|Executed Ipc A|hmma|pipe_xu|Warp Cycles Per Issued|Block Limit Reg|Block Limit Shared|Dynamic Shared|Local Memory|SM Frequency" $OUT/call4-ncu-gluon.txt | head -120
