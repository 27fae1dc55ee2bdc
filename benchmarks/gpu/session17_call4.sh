#!/bin/bash
# Session 17, GPU call 4 (H100): decode attention with its programs' tile grids out of phase
# (.gpuwork/s17/phase, S17_PHASES=2|4: program i starts (i % P) * BLOCK_N / P tokens early, those tokens
# masked), so that not every program waits for its tile at the same moment. Against main
# (.gpuwork/s17/start): decode steps of the 1B and Qwen3-0.6B at 64 and 256 x 512, two interleaved rounds.
# The phase tree: `git archive 4d664d7 pagedllm`, then results/session17/phase-shift-attempt.diff (patch -p0).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json17c4; rm -rf $J; mkdir -p $J; S=$PWD/.gpuwork/s17
cp benchmarks/gpu/session16_decode.py /tmp/s16_decode.py; cp benchmarks/gpu/kernel_costs.py /tmp/
dec() { local name=$1 tree=$2 model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 /tmp/s16_decode.py \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 \
  | grep -v -i warn | grep -v "^written" | grep -v "batch  step"); }
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
