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
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json17c7; rm -rf $J; mkdir -p $J; S=$PWD/.gpuwork/s17
cp benchmarks/gpu/session16_decode.py /tmp/s16_decode.py; cp benchmarks/gpu/kernel_costs.py /tmp/
dec() { local name=$1 tree=$2 model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 /tmp/s16_decode.py \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 \
  | grep -v -i warn | grep -v "^written" | grep -v "batch  step" | grep -v "DECODES_ONLY': True" | grep -v "FUSED_MERGE': True"); }
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
