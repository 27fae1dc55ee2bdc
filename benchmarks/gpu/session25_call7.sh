#!/bin/bash
# Session 25, call 7 (H100; carry .whl/serve, .gpuwork/shared_models, .gpuwork/trees): call 6 found the 1B
# workload (256 x (512 in, 128 out)) 3.5% slower from session 23's tree than from session 16's on one
# machine, and no slower from main than from session 23's. This runs it from the trees between them
# (.gpuwork/trees/<commit>: `git archive <commit> pagedllm`), in commit order, two rounds; output tok/s
# and the run's JSON (which has the step trace's totals) per tree and round.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
ROOT=$PWD M=$PWD/.gpuwork/shared_models J=/tmp/json25b; rm -rf $J; mkdir -p $J
for r in 1 2; do
  for c in 5758b50 0438fad 8e151c8 b20b71a bb4ed2a 81eab27 792f8e0 2994288 39747d0; do
    printf "== %s round %s: " $c $r
    # From a neutral folder: `python -m` puts the working folder first on the path.
    (cd /tmp && PYTHONPATH=/tmp/site:$ROOT/.gpuwork/trees/$c timeout 100 python3 -m pagedllm.cli bench throughput \
      --load-format dummy --max-model-len 2048 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 \
      --num-prompts 256 --output-json $J/$c-$r.json 2>&1 | grep -v -i warn | grep -E "^Throughput|rror|Traceback")
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call7-bisect.json
