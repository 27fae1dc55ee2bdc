#!/bin/bash
# Session 5: after the review fixes (merge warps from splits_p, any kernel compiled in a step fails the
# test, a >16-split mixed step, the step trace, the bf16 sampler path): the GPU tests that cover them.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py tests/test_kernel_warmup.py \
  tests/test_step_trace.py tests/test_sampler.py tests/test_fused_ops.py \
  "tests/test_triton_attention.py::test_batch_size_block_table_width_and_split_count_compile_no_new_variant" \
  "tests/test_triton_attention.py::test_fused_merge_is_repeatable_and_skips_prefills_in_mixed_batches" \
  tests/test_async_scheduling.py -k "not smollm2" > $OUT/tests.log 2>&1
grep -E "^E  |^FAILED|passed|failed" $OUT/tests.log | head -20
