#!/bin/bash
# Session 12, GPU call 10 (H100): main after session 12 (gated and rotated skinny launches, step inputs
# read before the PDL wait) against main at the end of session 11 (84f6ff5, a copy in .gpuwork/s12/base):
# decode steps of Llama-3.2-1B (64 and 256 x 512, two rounds), Llama-3.1-8B (64 x 1024) and Qwen3-0.6B
# (64 x 512), interleaved. Call 10 ran `python3 -m pagedllm.cli` from the repo root, which imports the
# checkout's pagedllm whatever PYTHONPATH says: both of its columns measured main after session 12. Call 11
# (CALL=11) runs each tree from its own folder.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { name=$1; tree=$2; model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 -m pagedllm.cli bench decode \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | tail -3); }
for case in "llama-3.2-1b 1 --batch-sizes 64 256 --context 512" "llama-3.1-8b 1 --batch-sizes 64 --context 1024" \
            "qwen3-0.6b 1 --batch-sizes 64 --context 512" "llama-3.2-1b 2 --batch-sizes 64 256 --context 512"; do
  set -- $case; model=$1; r=$2; shift 2
  for s in now s11; do echo "== $model $s $r"
    tree=$([ $s = s11 ] && echo $PWD/.gpuwork/s12/base || echo $PWD)
    dec decode-$model-$s-$r $tree $model "$@"
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call${CALL:-10}-decode.json
