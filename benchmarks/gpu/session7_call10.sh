#!/bin/bash
# Session 7, GPU call 10 (H100): the async scheduling tests again on the final scheduler (decodes' tokens
# reserved before chunks, the beam decline), then one Llama-3.2-1B 256 x (512, 128) run as a sanity check.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_async_scheduling.py -k "not smollm2" \
  > $OUT/tests-async-final.log 2>&1; grep -E "FAILED|^E  " $OUT/tests-async-final.log | head -20; tail -2 $OUT/tests-async-final.log
timeout 150 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 --model $M/llama-3.2-1b.json \
  --input-len 512 --output-len 128 --num-prompts 256 --output-json $OUT/final-1b.json 2>&1 | grep -E "Throughput|oofline|rror"
