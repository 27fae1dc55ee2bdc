#!/bin/bash
# Session 17, GPU call 7 (H100): decode attention with the next tile's block ids carried one iteration
# ahead (session 11's 58e1938, redone on today's kernel in .gpuwork/s17/carry), so that Triton gives the
# K/V tiles two shared-memory buffers instead of one (call 6's SASS: one buffer, every tile waits for
# all its copies). One KV head per program, single split; S17_CARRY_BN picks the tile per head dim
# (32 tokens: two buffers of 16 KB for either head dim, so four programs still fit an SM's shared
# memory); S17_IDS_EARLY=1 also loads the first tile's ids before the PDL wait (the variable is live
# across it anyway). Session 11 measured carried ids faster alone and slower in a PDL step, before
# session 12 moved the metadata loads ahead of the wait.
# Against main (.gpuwork/s17/start): decode steps of the 1B and Qwen3-0.6B at 64 and 256 x 512, two
# interleaved rounds, registers and shared memory in round 1.
# Not run in session 17 (no device was lent after call 6); run as session 18's call 1
# (results/session18/call7-decode.json). The trees, from the checkout's root:
#   mkdir -p .gpuwork/s17/start .gpuwork/s17/carry
#   git archive 4d664d7 pagedllm | tar -x -C .gpuwork/s17/start
#   git archive 4d664d7 pagedllm | tar -x -C .gpuwork/s17/carry
#   (cd .gpuwork/s17/carry && patch -p0 < ../../../benchmarks/results/session17/carry-ids-experiment.diff)
set -u
source benchmarks/gpu/decode_ab.sh json17c7
for r in 1 2; do
  for v in start c32 c32e c64; do
    early=0
    case $v in start) tree=$S/start; carry=0; bn="";; c32) tree=$S/carry; carry=1; bn=64:32,128:32;;
      c32e) tree=$S/carry; carry=1; bn=64:32,128:32; early=1;; c64) tree=$S/carry; carry=1; bn=64:64,128:64;; esac
    for m in llama-3.2-1b qwen3-0.6b; do
      echo "== $m $v round $r"
      S17_CARRY=$carry S17_CARRY_BN=$bn S17_IDS_EARLY=$early S16_REGS=$([ $r = 1 ] && echo 1 || echo 0) dec $m-$v-$r $tree $m --batch-sizes 64 256 --context 512
    done
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call7-decode.json
