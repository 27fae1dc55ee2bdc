#!/bin/bash
# GPU check of main after merging session 4's branches (issue 5 kernels, issue 6 async scheduling,
# issue 7 engine core process), H100. Each part has its own time limit; all fit one 600 s call.
# Carry: .gpuwork/shared_models .cache/gpu-wheels .whl
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
git log -1 --format="main at %h" 2>/dev/null
echo "== 1. CUDA tests: Triton generation, CUDA graphs, fused ops, async scheduling"
timeout 170 python3 -m pytest -q -p no:cacheprovider tests/test_triton_generation.py tests/test_cuda_graphs.py \
  tests/test_fused_ops.py tests/test_async_scheduling.py 2>&1 | tail -3
echo "== 2. greedy outputs under preemption (recompute / swap / auto), async scheduling on"
timeout 80 python3 benchmarks/gpu/session3_swap_check.py $M/llama-3.2-1b.json 2>&1 | grep -v -i warn | tail -5
echo "== 3. Qwen3-0.6B nano-vllm workload: warm-up, then async and synchronous"
tp() { timeout 60 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "$@" 2>&1 | grep -v -i warn | grep -E "Throughput|oofline|rror"; }
Q="--model $M/qwen3-0.6b.json --input-len 100-1024 --output-len 100-1024 --num-prompts 256"
tp $Q --no-async-scheduling > /dev/null
echo "async:"; tp $Q --output-json $OUT/verify-qwen3-async.json
echo "synchronous:"; tp $Q --no-async-scheduling --output-json $OUT/verify-qwen3-sync.json
echo "== 4. server (engine core process, async scheduling) vs offline, saturated, 4 client processes"
(cd benchmarks && timeout 120 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
  --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 \
  --request-rates inf --client-processes 4 --name verify-serve-gpu 2>&1 | grep -v -i warn | tail -6;
  cp results/verify-serve-gpu.json $OUT/ 2>/dev/null)
echo "== 5. load test, 300 clients, float32, preemption by both modes, against the merged server"
timeout 120 python3 benchmarks/load_test.py --clients 300 --token-prompts 24 --prompt-len 8 256 --vocab-size 128000 \
  --max-tokens 64 --server-args "--model $M/llama-3.2-1b.json --load-format dummy --dtype float32 --max-model-len 512 \
  --kv-cache-memory-bytes 268435456 --swap-space 2 --swap-threshold-tokens 64 --max-num-seqs 256" \
  --out $OUT/verify-load-test.json 2>&1 | grep -v -i warn | tail -4
true
