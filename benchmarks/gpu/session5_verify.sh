#!/bin/bash
# Session 5: the server fixes (attention kernels compiled at start-up and never per step, commands
# sent in bounded messages, the core's heap frozen after start-up) on the H100: CUDA tests, then the
# saturated server against offline with the step trace.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
echo "== CUDA tests"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py tests/test_kernel_warmup.py \
  tests/test_triton_attention.py -k "compile or warm or graphs" > $OUT/cuda-tests.log 2>&1
grep -E "^E  |passed|failed" $OUT/cuda-tests.log | head -20
cd benchmarks
for procs in ${PROCS:-4}; do
  echo "== server vs offline, $procs client processes"
  rm -f $OUT/trace.*
  PAGEDLLM_STEP_TRACE=$OUT/trace timeout 200 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json \
    --load-format dummy --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 \
    --output-len 128 --request-rates inf --client-processes $procs --name verify5-$procs-serve-gpu 2>&1 \
    | grep -v -i warn | tail -4
  cp results/verify5-$procs-serve-gpu.json $OUT/
  python3 summarize_step_trace.py $OUT/trace.* | grep -v "slowest.*'prefill_tokens': 0"
  mkdir -p $OUT/t$procs && mv $OUT/trace.* $OUT/t$procs/
done
