#!/bin/bash
# Taken back: apply benchmarks/results/session35/persistent-attempt.diff first (the kernel, its launch, its tests
# and the harness cases).
# Session 35, call 1 (H100; carry .whl/serve and .gpuwork/shared_models): the persistent decode kernel
# (pagedllm/attention/triton/decode_persistent.py). Its tests on CUDA, then the 1B's 256-row decode step
# with each persistent launch swapped in (session29_attention_in_step.py, three interleaved rounds, the
# last one profiled), then the other models' 128-256-row steps if time is left. Logs and JSON under $OUT.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
timeout 150 python3 -m pytest -q --tb=short -p no:cacheprovider tests/test_triton_attention.py \
  -k "persistent or carried or several_kv_heads" > "$OUT/call1-tests.log" 2>&1
echo "tests: exit $? -- $(tail -1 "$OUT/call1-tests.log")"
timeout 330 python3 benchmarks/gpu/session29_attention_in_step.py "$OUT/call1-1b-256.json" \
  --cases persistent-llama-3.2-1b-256 --rounds 3 --profile > "$OUT/call1-1b-256.log" 2>&1
echo "1b-256: exit $?"; tail -14 "$OUT/call1-1b-256.log"
timeout 100 python3 benchmarks/gpu/session29_attention_in_step.py "$OUT/call1-others.json" \
  --cases persistent-qwen3-0.6b-256 persistent-llama-3.2-1b-128 --rounds 2 > "$OUT/call1-others.log" 2>&1
echo "others: exit $?"; grep -E "^==|^  " "$OUT/call1-others.log"
