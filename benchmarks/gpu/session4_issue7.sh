#!/bin/bash
# GPU run (H100), issue 7: `pagedllm serve` with the engine core in its own process, against offline
# LLM.generate on the same prompts (Llama-3.2-1B shape, dummy weights, bf16, 256 x (512 in, 128 out)).
# The device tool sends the lead's checkout, so this branch travels as a copy in an ignored folder of
# it; run from that copy:  cd .gpuwork/issue7 && bash benchmarks/gpu/session4_issue7.sh
# (carry .gpuwork/issue7 .gpuwork/shared_models .cache/gpu-wheels .whl).
set -u
R=$(cd ../.. && pwd)  # the lead's checkout: the wheels and the model configs
python3 -m pip install -q --no-index --no-deps --target /tmp/site $R/.cache/gpu-wheels/*.whl \
    $R/.whl/serve/*.whl $R/.whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
git log --oneline -1 2>/dev/null || cat COMMIT 2>/dev/null
M=$R/.gpuwork/shared_models
cd benchmarks
timeout ${BUDGET:-330} python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
    --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 \
    --request-rates ${RATES:-16 32 64 inf} --name serve-gpu-llama-3.2-1b-core-process 2>&1 \
    | grep -v -i warn | tail -16
cp results/serve-gpu-llama-3.2-1b-core-process.json $OUT/ 2>/dev/null; true
