#!/bin/bash
# Session 20, GPU call 5 (H100; carry .whl/serve and .gpuwork/shared_models): after call 4,
#   1. the generation tests alone (call 4 ran out of its 150 s after 2 passed: the warm-up compiles
#      more prefill variants now);
#   2. the warm-up's time from a cold Triton cache, the 1B, this tree and the tree before
#      (prefill-facts.diff reversed);
#   3. issue 5's prefill rows (session 19's call 11 command) with today's kernel.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
rm -rf /tmp/before && mkdir -p /tmp/before && cp -r pagedllm benchmarks /tmp/before/
(cd /tmp/before && patch -s --batch -R -p1 < benchmarks/results/session20/prefill-facts.diff) || exit 1
M=$PWD/.gpuwork/shared_models/llama-3.2-1b.json
echo "== 2. warm-up from a cold cache"
(cd /tmp/before && TRITON_CACHE_DIR=$(mktemp -d) PYTHONPATH=/tmp/site:/tmp/before timeout 150 python3 \
  benchmarks/gpu/session20_warmup_time.py $M 2>&1 | grep -v -i warn | sed 's/^/before: /')
TRITON_CACHE_DIR=$(mktemp -d) PYTHONPATH=/tmp/site:$PWD timeout 150 python3 \
  benchmarks/gpu/session20_warmup_time.py $M 2>&1 | grep -v -i warn | sed 's/^/now: /'
export PYTHONPATH=/tmp/site:$PWD
echo "== 3. issue 5's prefill rows"
timeout 150 python3 -m pagedllm.cli bench kernels --heads llama qwen --batches 16 --contexts 1024 \
  --block-sizes 16 --prefill-shapes 1x1024 1x4096 1x16384 4x1024 16x1024 16x4096 64x1024 \
  --out $OUT/call5-kernels-prefill.json 2>&1 | grep -E "^(prefill|device)|rror" | grep -v -i warn
echo "== 1. generation tests"
timeout 260 python3 -m pytest -q -p no:cacheprovider --durations=8 tests/test_triton_generation.py \
  > $OUT/call5-tests-generation.log 2>&1
grep -E "^E  |FAILED|passed|failed|s call" $OUT/call5-tests-generation.log | head -20
