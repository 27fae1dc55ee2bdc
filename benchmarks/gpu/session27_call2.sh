#!/bin/bash
# Session 27, calls 2-3 (H100; carry .whl/serve and .gpuwork/shared_models): decode attention taking the
# step's K/V (PAGEDLLM_STEP_KV=attention, the default in the trees that ran) against the layer's own rotary / q-k norm /
# K/V-write launch (off) and, for the 1B, rotary in the qkv epilogue with attention storing (qkv_rope).
# Whole decode steps at 64 and 256 rows, one round per call (ROUND=1|2); then GPU tests ($TESTS). Call 2 ran
# 99a6a70 (the step's K/V stored before the loop), call 3 a582d33 (after it); both taken back, the diff is
# benchmarks/results/session27/step-kv-in-decode-attempt.diff.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models J=/tmp/json27; rm -rf $J; mkdir -p $J
R=${ROUND:-1}
run() {  # model mode
  echo "== $1 $2 round $R"
  PAGEDLLM_STEP_KV=$2 timeout 120 python3 -m pagedllm.cli bench decode --model $M/$1.json --load-format dummy \
    --max-model-len 2048 --batch-sizes 64 256 --context 512 --steps 32 --output-json $J/$1-$2-$R.json 2>&1 \
    | grep -v -i warn | grep -v "^written"
  sleep 2
}
for mode in attention off qkv_rope; do run llama-3.2-1b $mode; done
for mode in off attention; do run qwen3-0.6b $mode; done
python3 benchmarks/gpu/merge_json.py $J $OUT/call-round$R-decode.json
if [ -n "${TESTS:-}" ]; then
  timeout ${TEST_TIMEOUT:-200} python3 -m pytest -q -p no:cacheprovider $TESTS 2>&1 | grep -v -i warn | tail -6 | tee $OUT/round$R-tests.log
fi
