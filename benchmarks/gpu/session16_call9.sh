#!/bin/bash
# Session 16, GPU call 9 (H100): decode attention reads its first tile's block ids before the PDL wait,
# against main before it (a copy in .gpuwork/s16/start2): decode steps of the 1B and Qwen3-0.6B at 64 and
# 256 x 512, two interleaved rounds; the kernel's registers; then the GPU tests of decode attention.
set -u
source benchmarks/gpu/decode_ab.sh json9
NOW=$PWD; START=$PWD/.gpuwork/s16/start2
for r in 1 2; do
  for s in now start; do
    tree=$([ $s = start ] && echo $START || echo $NOW)
    echo "== 1b $s $r"; S16_REGS=$([ $r = 1 ] && echo 1 || echo 0) dec decode-1b-$s-$r $tree llama-3.2-1b --batch-sizes 64 256 --context 512
    echo "== qwen3 $s $r"; S16_REGS=$([ $r = 1 ] && echo 1 || echo 0) dec decode-qwen3-$s-$r $tree qwen3-0.6b --batch-sizes 64 256 --context 512
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call9-decode.json
export PYTHONPATH=/tmp/site:$PWD
echo "== decode attention tests"; timeout 250 python3 -m pytest -q -x tests/test_triton_attention.py -k "decode or fused_merge or backend" 2>&1 | tail -2
