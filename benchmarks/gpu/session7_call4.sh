#!/bin/bash
# Session 7, GPU call 4 (H100): the Qwen3-0.6B workload (256 sequences, input and output lengths uniform in
# 100-1024, the nano-vllm workload): pagedllm and HF generate on one padded batch of 256 in the same process,
# after a warm-up run of 64 prompts of the same distribution (another seed).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
tp() { timeout $1 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror|hf_|written|Traceback" ; }
echo "== warm-up"; tp 150 --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 --num-prompts 64 --workload-seed 7
echo "== qwen3 with HF generate"; tp 480 --model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 \
  --num-prompts 256 --peers generate --peer-batch-size 256 --output-json $OUT/table-qwen3-0.6b.json
