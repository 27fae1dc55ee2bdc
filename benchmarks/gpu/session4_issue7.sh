#!/bin/bash
# GPU run (H100), issue 7: `pagedllm serve` with the engine core in its own process, against offline
# LLM.generate on the same prompts (Llama-3.2-1B shape, dummy weights, bf16, 256 x (512 in, 128 out)).
# A: the usual one client process at 16/32/64/inf req/s (the table's method since session 3);
# B: the same server and prompts sent from 4 client processes (is one Python client the bottleneck?).
# The device tool sends the lead's checkout, so this branch travels as a copy in an ignored folder of
# it; run from that copy:  cd .gpuwork/issue7 && bash benchmarks/gpu/session4_issue7.sh
# (carry .gpuwork/issue7 .gpuwork/shared_models .cache/gpu-wheels .whl).
set -u
R=$(cd ../.. && pwd)  # the lead's checkout: the wheels and the model configs
python3 -m pip install -q --no-index --no-deps --target /tmp/site $R/.cache/gpu-wheels/*.whl \
    $R/.whl/serve/*.whl $R/.whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
echo "branch commit $(cat COMMIT 2>/dev/null)"
M=$R/.gpuwork/shared_models
S="python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy --dtype bfloat16 \
    --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128"
cd benchmarks
timeout ${BUDGET_A:-170} $S --request-rates ${RATES_A:-16 32 64 inf} --name serve-gpu-llama-3.2-1b-core-process \
    2>&1 | grep -v -i warn | tail -12
cp results/serve-gpu-llama-3.2-1b-core-process.json $OUT/ 2>/dev/null
timeout ${BUDGET_B:-150} $S --request-rates 64 inf --client-processes 4 \
    --name serve-gpu-llama-3.2-1b-core-process-4clients 2>&1 | grep -v -i warn | tail -8
cp results/serve-gpu-llama-3.2-1b-core-process-4clients.json $OUT/ 2>/dev/null; true
