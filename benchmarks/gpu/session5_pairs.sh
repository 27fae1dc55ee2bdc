#!/bin/bash
# Session 5: two KV heads per decode program on big grids (choose_decode_plan's pair rule): the decode
# kernel tests compiled, the no-compile test, the Llama-3.2-1B decode step against its floor, and the
# 1B throughput workload.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_triton_attention.py -k "decode or plan or merge" \
  tests/test_cuda_graphs.py > $OUT/tests.log 2>&1
grep -E "^E  |^FAILED|passed|failed" $OUT/tests.log | head -12
timeout 90 python3 -m pagedllm.cli bench decode --model $M/llama-3.2-1b.json --load-format dummy --max-model-len 2048 \
  --batch-sizes 64 256 --context 512 --steps 32 --output-json $OUT/decode-llama-3.2-1b-pairs.json 2>&1 \
  | grep -v -i warn | tail -3
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror"; }
tp 40 --model $M/llama-3.2-1b.json --input-len 512 --output-len 8 --num-prompts 64 > /dev/null
tp 60 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
  --output-json $OUT/throughput-llama-3.2-1b-pairs.json
