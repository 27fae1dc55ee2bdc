#!/bin/bash
# Session 17, GPU call 4 (H100): decode attention with its programs' tile grids out of phase
# (.gpuwork/s17/phase, S17_PHASES=2|4: program i starts (i % P) * BLOCK_N / P tokens early, those tokens
# masked), so that not every program waits for its tile at the same moment. Against main
# (.gpuwork/s17/start): decode steps of the 1B and Qwen3-0.6B at 64 and 256 x 512, two interleaved rounds.
# The phase tree: `git archive 4d664d7 pagedllm`, then results/session17/phase-shift-attempt.diff (patch -p0).
set -u
source benchmarks/gpu/decode_ab.sh json17c4
for r in 1 2; do
  for v in start p2 p4; do
    tree=$S/$([ $v = start ] && echo start || echo phase); ph=${v#p}; [ $v = start ] && ph=1
    for m in llama-3.2-1b qwen3-0.6b; do
      echo "== $m $v round $r"
      S17_PHASES=$ph dec $m-$v-$r $tree $m --batch-sizes 64 256 --context 512
    done
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call4-decode.json
