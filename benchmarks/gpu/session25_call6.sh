#!/bin/bash
# Session 25, call 6 (H100; carry .whl/serve, .gpuwork/shared_models, .gpuwork/t5758b50, .gpuwork/t39747d0):
# call 5 measured the 1B workload at 59.2% of its roofline where session 16 measured 67.4% (and its HF
# peer 38% slower than session 16's). Is it the code or the machine? The same workload, pagedllm alone,
# from session 16's tree (5758b50), session 23's (39747d0, the last before the head-major cache) and
# today's main, two interleaved rounds on one machine, each tree's package carried as .gpuwork/t<commit>.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
lscpu | grep -E "Model name|^CPU\(s\)|MHz" | head -4
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader
ROOT=$PWD M=$PWD/.gpuwork/shared_models
for r in 1 2; do
  for tree in t5758b50 t39747d0 main; do
    if [ $tree = main ]; then P=/tmp/site:$ROOT; else P=/tmp/site:$ROOT/.gpuwork/$tree; fi
    echo "== $tree round $r"
    # From a neutral folder: `python -m` puts the working folder first on the path.
    (cd /tmp && PYTHONPATH=$P timeout 120 python3 -m pagedllm.cli bench throughput --load-format dummy \
      --max-model-len 2048 --model $M/llama-3.2-1b.json --input-len 512 --output-len 128 --num-prompts 256 \
      --output-json $OUT/call6-$tree-$r.json 2>&1 | grep -v -i warn | grep -E "Throughput|oofline|rror|Traceback")
  done
done
