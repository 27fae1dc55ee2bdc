#!/bin/bash
# Session 5: the server at 0.81 of offline after the compile fix; the core's trace showed 7 requests
# admitted at t=0 and the next ones ~200 ms later. Pre-opened client connections, 4 then 8 client
# processes, with the step trace's per-step adds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
cd benchmarks
for procs in 4 8; do
  echo "== $procs client processes"
  rm -f $OUT/trace.*
  PAGEDLLM_STEP_TRACE=$OUT/trace timeout 200 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json \
    --load-format dummy --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 \
    --output-len 128 --request-rates inf --client-processes $procs --name clients$procs-serve-gpu 2>&1 \
    | grep -v -i warn | tail -4
  cp results/clients$procs-serve-gpu.json $OUT/
  python3 summarize_step_trace.py $OUT/trace.* | grep -v "slowest"
  mkdir -p $OUT/t$procs && mv $OUT/trace.* $OUT/t$procs/
done
