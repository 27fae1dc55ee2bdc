#!/bin/bash
# Session 11, GPU call 15 (H100), on 58e1938's decode.py plus an EARLY_RELEASE switch (decode attention
# lets the next kernel start right after its wait, or only at its exit: S11_LATE_RELEASE=1): 1B decode
# steps at 64 x 512 with the carried-ids launch (now) or the one before (S11_NO_CARRY=1), interleaved.
set -u
# NOTE: the switch lived only in the device's tree (58e1938's decode.py, `EARLY_RELEASE = True` after
# FUSED_MERGE_MAX_SPLITS, the kernel's wait_then_release split so that gdc_launch_dependents runs only
# if EARLY_RELEASE); it was not committed.
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl .whl/serve/*.whl \
  .whl/fast/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models
dec() { name=$1; shift; timeout 100 python3 benchmarks/gpu/session11_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --output-json $OUT/$name.json --model $M/llama-3.2-1b.json --batch-sizes 64 256 --context 512 2>&1 \
  | grep -v -i warn | tail -1; }
i=0
for s in now-early now-late before-early before-late before-late before-early now-late now-early; do i=$((i+1)); echo "== $s $i"
  unset S11_NO_CARRY S11_LATE_RELEASE
  case $s in before-*) export S11_NO_CARRY=1;; esac
  case $s in *-late) export S11_LATE_RELEASE=1;; esac
  dec decode-1b-$s-$i
done
