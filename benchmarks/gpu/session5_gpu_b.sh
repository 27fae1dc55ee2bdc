#!/bin/bash
# Session 5, second GPU check (H100): the CUDA tests after the kernel/serving/sampler changes (two
# processes), the Llama-3.2-1B decode step with greedy argmax on bf16 logits, then Llama-3.1-8B
# random-1000-1000 with 1000 prompts (issue 6's one workload never run; pagedllm only: ~1M output tokens
# leave no time for HF peers).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
P="python3 -m pytest -q -p no:cacheprovider"
(timeout 210 $P tests/test_triton_generation.py > $OUT/tests-a.log 2>&1) &
(timeout 210 $P tests/test_cuda_graphs.py tests/test_kernel_warmup.py tests/test_fused_ops.py tests/test_sampler.py \
  tests/test_async_scheduling.py -k "not smollm2" > $OUT/tests-b.log 2>&1) &
wait
for f in $OUT/tests-a.log $OUT/tests-b.log; do echo "== $f"; grep -E "^E  |^FAILED|passed|failed" $f | head -12; done
echo "== decode steps, Llama-3.2-1B, 512 context"
timeout 90 python3 -m pagedllm.cli bench decode --model $M/llama-3.2-1b.json --load-format dummy --max-model-len 2048 \
  --batch-sizes 64 256 --context 512 --steps 32 --output-json $OUT/decode-llama-3.2-1b-session5.json 2>&1 \
  | grep -v -i warn | tail -4
echo "== Llama-3.1-8B random-1000-1000, 1000 prompts"
timeout 280 python3 -m pagedllm.cli bench throughput --model $M/llama-3.1-8b.json --load-format dummy \
  --max-model-len 2048 --input-len 1000 --output-len 1000 --num-prompts 1000 \
  --output-json $OUT/throughput-llama-3.1-8b-random-1000-1000.json 2>&1 | grep -v -i warn | tail -5
