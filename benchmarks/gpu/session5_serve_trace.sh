#!/bin/bash
# Session 5: why the two-process server reached 0.44 of offline on merged main (verify2). Same run with
# PAGEDLLM_STEP_TRACE in both the server's engine core and the offline engine. The trace showed the
# timed run's first step taking ~0.75 s in `launch`: a Triton variant compiled for a new num_seqs /
# block-table width value class; this re-runs it with those arguments unspecialized.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
echo "== the compile test without the fix (must fail)"
mkdir -p /tmp/nofix && cp -r pagedllm tests /tmp/nofix/ && sed -i 's/@triton.jit(do_not_specialize=.*)/@triton.jit/' \
  /tmp/nofix/pagedllm/attention/triton/*.py
(cd /tmp/nofix && PYTHONPATH=/tmp/site:/tmp/nofix timeout 120 python3 -m pytest -q -p no:cacheprovider \
  tests/test_triton_attention.py -k "compile_no_new" 2>&1 | grep -E "assert not compiled|passed|failed" | tail -2)
echo "== with the fix"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_triton_attention.py -k "compile_no_new" 2>&1 | tail -3
export PAGEDLLM_STEP_TRACE=$OUT/trace
cd benchmarks && timeout 300 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json --load-format dummy \
  --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 \
  --request-rates inf --client-processes 4 --name trace-serve-gpu 2>&1 | grep -v -i warn | tail -8
cp results/trace-serve-gpu.json $OUT/ 2>/dev/null
python3 summarize_step_trace.py $OUT/trace.* | grep -v "slowest.*prefill_tokens': 0"
