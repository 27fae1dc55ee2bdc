#!/bin/bash
# Session 14, GPU call 10 (H100): the bf16 fused-launch test with its float32 truth now run layer by layer,
# on main and on a copy whose rotary and qk_norm_rope store the keys unrotated (.gpuwork/s14/mut): the
# test must pass on main and fail on the copy (before, a fault common to the fused runs could hide in the
# truth, which ran fused too).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
for tree in $PWD $PWD/.gpuwork/s14/mut; do
  echo "== $tree"
  (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 250 python3 -m pytest -q tests/test_triton_generation.py \
    -k bfloat16_logits_with_fused 2>&1 | grep -E "passed|failed|step [0-9]" | tail -6)
done 2>&1 | tee $OUT/tests-call10.log
