#!/bin/bash
# Session 6, last GPU call (H100): the prefill A/B table with the final defaults (set c), then end-to-end
# throughput, previous prefill (ed3c185's prefill.py + backend.py in a copy of the tree) against the new
# one, interleaved: Llama-3.2-1B 256 x (512, 128) twice each (head dim 64: pointers), Llama-3.1-8B
# 256 x (1024, 128) once each (head dim 128: TMA). Each run warms up on 8 of its prompts first (its default).
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
export PYTHONUNBUFFERED=1
NEW=$PWD
OLD=/tmp/old && mkdir -p $OLD && cp -r pagedllm benchmarks $OLD/ && cp .gpuwork/s6/old_tree/*.py $OLD/pagedllm/attention/triton/
M=$PWD/.gpuwork/shared_models
PYTHONPATH=$NEW timeout 150 python3 benchmarks/gpu/session6_prefill.py --old .gpuwork/s6/old_prefill.py --repeats 3 \
  --set c --out $OUT/session6-prefill-final.json | grep -E "old |default |sdpa |host" | cut -c1-84
tp() { tree=$1; shift; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout $1 python3 -m pagedllm.cli bench throughput \
  --load-format dummy --max-model-len 2048 "${@:2}" 2>&1 | grep -v -i warn | grep -E "Throughput|oofline|rror"); }
for run in 1 2; do
  for tree in old new; do
    T=$([ $tree = old ] && echo $OLD || echo $NEW)
    echo "== llama-3.2-1b $tree run $run"
    tp $T 90 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
      --output-json $OUT/throughput-llama-3.2-1b-$tree-$run.json
  done
done
for tree in old new; do
  T=$([ $tree = old ] && echo $OLD || echo $NEW)
  echo "== llama-3.1-8b $tree"
  tp $T 120 --model $M/llama-3.1-8b.json --input-len 1024 --output-len 128 --num-prompts 256 \
    --output-json $OUT/throughput-llama-3.1-8b-$tree.json
done
