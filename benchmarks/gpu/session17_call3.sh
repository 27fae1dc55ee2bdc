#!/bin/bash
# Session 17, GPU call 3 (H100): session 16's two ways of reading ahead of the PDL wait in decode attention
# (the first K/V tile, or the first tile's block ids; results/session16/*-attempt.diff), this time with the
# kernel capped at 128 registers a thread (Triton's maxnreg, S17_MAXNREG), so that four programs still fit
# an SM and whatever no longer fits spills instead. Against main (.gpuwork/s17/start): decode steps of the
# 1B and Qwen3-0.6B at 64 and 256 x 512, two interleaved rounds, with each compiled kernel's registers.
# The trees: `git archive 4d664d7 pagedllm` into .gpuwork/s17/{start,preload,ids}, then session 16's
# preload-first-tile-attempt.diff and first-tile-ids-attempt.diff (patch -p1) into the last two, each with
# `maxnreg=int(os.environ["S17_MAXNREG"])` added to the decode kernel's launch options when set.
set -u
source benchmarks/gpu/decode_ab.sh json17c3
for r in 1 2; do
  for v in start preload ids; do
    cap=$([ $v = start ] && echo "" || echo 128)
    for m in llama-3.2-1b qwen3-0.6b; do
      echo "== $m $v cap=$cap round $r"
      S17_MAXNREG=$cap S16_REGS=$([ $r = 1 ] && echo 1 || echo 0) dec $m-$v-$r $S/$v $m --batch-sizes 64 256 --context 512
    done
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call3-decode.json
