#!/bin/bash
# Session 32, call 2 (H100; nothing to carry): the 1B's 256-row linears alone, cuBLAS and the engine's gated
# kernel against a minimal TMA product with and without Triton's warp specialization
# (session32_ws_gemm.py). The first two tries hung in a specialized launch of 4 warps, and printed nothing
# (results only at the end of a case); the script now skips those launches and prints each result.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
timeout 280 python3 benchmarks/gpu/session32_ws_gemm.py $OUT/call2-ws-gemm.json 2>&1 | grep -v -i warn | tail -80
