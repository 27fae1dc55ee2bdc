#!/usr/bin/env bash
# Issue 7 on a GPU: `pagedllm serve` + `pagedllm bench serve` on the Llama-3.2-1B shape (dummy weights),
# request rates up to saturation, and offline `LLM.generate` on the same prompts (target: the saturated
# server's output tok/s within 10% of offline). NOT RUN YET: the GPU rows of docs/PERFORMANCE.md wait
# for it.
#
# The GPU image has no package index, and lacks the server's dependencies. Step 1 runs where pip can
# reach the index (wheels for CPython 3.12 on x86_64 Linux); step 2 on the GPU machine, from the repo root.
#
#   bash benchmarks/serve_gpu.sh fetch     # here: writes wheels/serve/
#   bash benchmarks/serve_gpu.sh run       # there: installs from wheels/serve/, runs, writes the JSON
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=wheels/serve
PY=${PYTHON:-python3}
MODEL=${MODEL:-../shared/models/llama-3.2-1b.json}

case "${1:-run}" in
fetch)
  $PY -m pip download -q -d "$WHEELS" --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    fastapi uvicorn prometheus-client httpx
  ls "$WHEELS"
  ;;
run)
  $PY -m pip install -q --no-index --find-links "$WHEELS" fastapi uvicorn prometheus-client httpx
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  cd benchmarks
  $PY serve_vs_offline.py --model "../$MODEL" --load-format dummy --dtype bfloat16 \
    --num-prompts 256 --input-len 512 --output-len 128 \
    --request-rates 4 8 16 32 64 inf --name serve-gpu-llama-3.2-1b
  ;;
*)
  echo "usage: $0 fetch|run" >&2
  exit 2
  ;;
esac
