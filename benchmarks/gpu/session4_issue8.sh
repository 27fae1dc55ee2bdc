#!/bin/bash
# GPU run (H100), issue 8: the full-scale load test and the 10-minute soak, on a Llama-3.2-1B-shape dummy
# model in float32 (so that a request recomputed or swapped in other batches is bit-comparable with its
# unloaded run), prompts of random token ids (a dummy model has no tokenizer).
#   bash benchmarks/gpu/session4_issue8.sh load   # load test (500 clients), then starts the soak in the background
#   bash benchmarks/gpu/session4_issue8.sh collect # waits for the soak (next call, machine still warm)
# A call may run 600 s at most and the soak alone takes 600 s, so it outlives its first call when the
# machine keeps background processes; `collect` falls back to a soak inside its own call if it did not.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models/llama-3.2-1b.json
# 256 MiB of float32 KV = 256 blocks = 4,096 token slots for up to 256 sequences of up to 320 tokens
SERVER="--model $M --load-format dummy --dtype float32 --max-model-len 512 --kv-cache-memory-bytes 268435456 --swap-space 2 --swap-threshold-tokens 64 --max-num-seqs 256"
PROMPTS="--token-prompts 24 --prompt-len 8 256 --vocab-size 128000 --max-tokens 64"
SOAK=.gpuwork/soak-run
start=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee $OUT/gpu.txt
if [ "$1" = load ]; then
  timeout 300 python3 benchmarks/load_test.py --clients 500 $PROMPTS --server-args "$SERVER" \
    --out $OUT/load-test-h100.json 2>&1 | grep -v -i warn | tail -6
  rm -rf $SOAK && mkdir -p $SOAK
  setsid nohup bash -c "nvidia-smi --query-gpu=timestamp,memory.used --format=csv -l 10 > $SOAK/gpu-mem.csv" \
    >/dev/null 2>&1 < /dev/null &
  setsid nohup python3 benchmarks/load_test.py --clients 200 --soak-seconds 600 $PROMPTS \
    --server-args "$SERVER" --out $SOAK/soak-h100.json > $SOAK/soak.log 2>&1 < /dev/null &
  echo "soak started at $(date +%T)"
  while [ $(( $(date +%s) - start )) -lt 570 ]; do sleep 10; done
  tail -3 $SOAK/soak.log; cp $SOAK/soak.log $OUT/soak-partial.log
else
  if [ -f $SOAK/soak.log ] && pgrep -f "soak-seconds 600" >/dev/null; then
    echo "soak survived the previous call; waiting for it"
    while pgrep -f "soak-seconds 600" >/dev/null && [ $(( $(date +%s) - start )) -lt 580 ]; do sleep 5; done
  else
    echo "no soak running (background processes did not survive the call): soak inside this call"
    mkdir -p $SOAK
    nvidia-smi --query-gpu=timestamp,memory.used --format=csv -l 10 > $SOAK/gpu-mem.csv &
    timeout 585 python3 benchmarks/load_test.py --clients 200 --soak-seconds 520 $PROMPTS \
      --server-args "$SERVER" --out $SOAK/soak-h100.json > $SOAK/soak.log 2>&1
  fi
  pkill -f "nvidia-smi --query-gpu=timestamp" ; tail -4 $SOAK/soak.log
  cp $SOAK/* $OUT/ 2>/dev/null
fi
true
