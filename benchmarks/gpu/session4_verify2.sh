#!/bin/bash
# Second GPU check of merged main (session 4). The first (session4_verify.sh) timed the server on a cold
# Triton cache (ITL p99 1.0 s: kernel variants compiling inside the timed run) and its CUDA tests ran
# out of time in one process. Here: the CUDA tests in 4 parallel processes, then serve_vs_offline whose
# warm-ups are now whole saturated runs on both sides.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
echo "== CUDA tests, 4 processes"
for t in test_triton_generation test_cuda_graphs test_fused_ops test_async_scheduling; do
  (timeout 170 python3 -m pytest -q -p no:cacheprovider tests/$t.py > $OUT/$t.log 2>&1; echo "$t: $(tail -1 $OUT/$t.log)") &
done
wait
echo "== server (engine core process, async scheduling) vs offline, saturated, 4 client processes"
cd benchmarks && timeout 200 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
  --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 \
  --request-rates inf --client-processes 4 --name verify2-serve-gpu 2>&1 | grep -v -i warn | tail -6
cp results/verify2-serve-gpu.json $OUT/ 2>/dev/null; true
