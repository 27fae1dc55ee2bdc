#!/bin/bash
# Session 34 (H100; carry .whl/serve): the review fixes change the scheduler's seats (beam searches),
# engine start-up checks (max_model_len, devices, backends), where the KV stats sample a step (async
# scheduling, the GPU's default) and the CLI's errors. Their tests on CUDA, then the paths they run
# through: CUDA graphs and async scheduling. Logs under $OUT.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
run() {  # run NAME SECONDS pytest-args...
  local name=$1 limit=$2; shift 2
  timeout "$limit" python3 -m pytest -q --tb=short -p no:cacheprovider "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $? -- $(tail -1 "$OUT/$name.log")"
}
run call1-review-tests 300 -k "not smollm" tests/test_request_errors.py tests/test_contiguous_engine.py \
  tests/test_cli_errors.py tests/test_engine_tiny.py
run call1-graphs-async 260 -k "not smollm" tests/test_cuda_graphs.py tests/test_async_scheduling.py
