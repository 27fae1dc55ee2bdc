#!/bin/bash
# Session 7, GPU call 3 (H100): the Llama-3.2-1B 256 x (512, 128) table, every row from this one call:
# pagedllm (paged, async scheduling, the defaults) with HF generate (one padded batch of 256) and HF
# generate_batch (paged|sdpa) in the same process, then pagedllm --kv-policy contiguous (step-traced);
# then session7_phases.py again (where the time goes, after the start-up heap freeze).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror|hf_|written|Traceback" ; }
echo "== warm-up (fills Triton's disk cache)"; tp 150 --model $M/llama-3.2-1b.json --input-len 512 --output-len 8 --num-prompts 64
echo "== 1B with peers"; tp 300 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
  --peers generate generate_batch --output-json $OUT/table-llama-3.2-1b.json
echo "== 1B contiguous"; PAGEDLLM_STEP_TRACE=$OUT/trace-contiguous tp 150 --model $M/llama-3.2-1b.json --input-len 512 \
  --output-len 128 --num-prompts 256 --kv-policy contiguous --output-json $OUT/table-llama-3.2-1b-contiguous.json
echo "== 1B paged, step-traced"; PAGEDLLM_STEP_TRACE=$OUT/trace-paged tp 150 --model $M/llama-3.2-1b.json --input-len 512 \
  --output-len 128 --num-prompts 256 --output-json $OUT/table-llama-3.2-1b-paged-traced.json
echo "== phases"; PAGEDLLM_STEP_TRACE=$OUT/trace-phases timeout 200 python3 benchmarks/gpu/session7_phases.py \
  --model $M/llama-3.2-1b.json --out $OUT --name phases-1b-freeze 2>&1 | grep -v -i -E "warn|USDT" | head -12
