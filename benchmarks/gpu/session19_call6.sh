#!/bin/bash
# Session 19, GPU call 6 (H100): (1) where a small prefill's time goes, host or GPU, through TMA
# descriptors and through pointers (session19_prefill_host.py); (2) the 8B's decode steps at 64 and 256
# rows against the floor now timed with CUDA events (call 2 gave the 1B's and Qwen3's). Carry
# .whl/serve and .gpuwork/shared_models.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
timeout 200 python3 benchmarks/gpu/session19_prefill_host.py $OUT/call6-prefill-host.json 2>&1 | grep -v -i warn
echo "== decode 8b"
timeout 200 python3 -m pagedllm.cli bench decode --load-format dummy --max-model-len 2048 --steps 32 \
  --model .gpuwork/shared_models/llama-3.1-8b.json --batch-sizes 64 256 --context 1024 \
  --output-json $OUT/call6-decode-8b.json 2>&1 | grep -v -i warn | tail -8
