#!/bin/bash
# Session 31, call 6 (H100; carry .whl/serve and .gpuwork/shared_models): serving the 1B with admissions
# scheduled ahead (PAGEDLLM_ADMIT_AHEAD=1) and without (=0), one server per run in the order 1, 0, 0, 1
# (session 7 found a server slower with admissions ahead, in runs that were never interleaved both
# ways): serve_vs_offline.py --no-offline, 256 prompts x (512, 128), request rates 64 and inf, 4 client
# processes.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
for mod in httpx fastapi uvicorn starlette; do python3 -c "import $mod" 2>&1 | tail -1 | sed "s/^/$mod: /"; done
i=0
for a in 1 0 0 1; do
  i=$((i+1))
  echo "== serve $i ADMIT_AHEAD=$a $(date +%T)"
  (cd benchmarks && PAGEDLLM_ADMIT_AHEAD=$a timeout 140 python3 serve_vs_offline.py --model $M/llama-3.2-1b.json \
    --load-format dummy --dtype bfloat16 --max-model-len 2048 --num-prompts 256 --input-len 512 --output-len 128 \
    --request-rates 64 inf --client-processes 4 --no-offline --name serve-admit-$i-$a 2>&1 | grep -v -i warn \
    | tail -6; cp results/serve-admit-$i-$a.json $OUT/ 2>/dev/null)
done
echo "== end $(date +%T)"
