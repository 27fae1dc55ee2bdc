#!/bin/bash
# Session 31, call 5 (H100; carry .whl/serve and .gpuwork/shared_models): admissions and prefill chunks
# scheduled ahead (Scheduler.schedule_ahead). The async-scheduling and sampler tests on the GPU; then the
# 1B workload, 256 x (512 in, 128 out), with admissions ahead (PAGEDLLM_ADMIT_AHEAD=1, the default) and
# without (=0), four processes in 1,0,0,1 order, three timed runs each, with the step trace's phases
# (session30_throughput_spread.py); then `bench throughput` on the Qwen3-0.6B workload (100-1024 in and
# out) once each way.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
python3 -c "import httpx, fastapi, uvicorn; print('server deps ok')" 2>&1 | tail -1
timeout 240 python3 -m pytest -q -x --tb=short tests/test_async_scheduling.py tests/test_sampler.py \
  -k "not smollm" 2>&1 | tail -4
i=0
for a in 1 0 0 1; do
  i=$((i+1))
  echo "== process $i ADMIT_AHEAD=$a"
  PAGEDLLM_ADMIT_AHEAD=$a PAGEDLLM_STEP_TRACE=/tmp/trace-$i-$a timeout 100 python3 \
    benchmarks/gpu/session30_throughput_spread.py $M/llama-3.2-1b.json $OUT/call5-spread-$i-admit$a.json \
    --repeats 3 2>&1 | grep -v -i warn | grep "^run\|phases\|Error\|error"
done
for a in 1 0; do
  echo "== qwen3 ADMIT_AHEAD=$a"
  PAGEDLLM_ADMIT_AHEAD=$a timeout 100 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 \
    --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 --num-prompts 256 \
    --output-json $OUT/call5-qwen3-admit$a.json 2>&1 | grep -E "^Throughput|oofline|rror"
done
