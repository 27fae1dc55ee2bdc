#!/bin/bash
# Taken back: apply benchmarks/results/session35/persistent-attempt.diff first (the kernel, its launch, its tests
# and the harness cases).
# Session 35, call 2 (H100; carry .whl/serve and .gpuwork/shared_models): call 1's persistent kernel had
# one K/V buffer (its query row was a load the K/V addresses waited on); without that load Triton gives it
# two. Its tests, then the 1B's 256-row step with each launch swapped in, and the split kernel's pairs
# with carried block ids, then the other models if time is left. Logs and JSON under $OUT.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
timeout 100 python3 -m pytest -q --tb=short -p no:cacheprovider tests/test_triton_attention.py \
  -k persistent > "$OUT/call2-tests.log" 2>&1
echo "tests: exit $? -- $(tail -1 "$OUT/call2-tests.log")"
timeout 360 python3 benchmarks/gpu/session29_attention_in_step.py "$OUT/call2-1b-256.json" \
  --cases persistent-llama-3.2-1b-256 --rounds 3 --profile > "$OUT/call2-1b-256.log" 2>&1
echo "1b-256: exit $?"; tail -14 "$OUT/call2-1b-256.log"
timeout 100 python3 benchmarks/gpu/session29_attention_in_step.py "$OUT/call2-others.json" \
  --cases persistent-qwen3-0.6b-256 persistent-llama-3.2-1b-128 --rounds 2 > "$OUT/call2-others.log" 2>&1
echo "others: exit $?"; grep -E "^==|^  " "$OUT/call2-others.log"
