#!/bin/bash
# Session 35, call 4 (H100; carry .whl/serve): the review fixes that touch what the GPU runs: the
# scheduler's re-admission of preempted beams, request checks (stop strings, bytes prompts), the
# detokenizer, chat content; their test files and the async-scheduling and CUDA-graph tests. Logs in $OUT.
set -u
echo "tree: $(git rev-parse --short HEAD 2>/dev/null) $(git status --short | wc -l) changed"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
run() {  # run NAME SECONDS pytest-args...
  local name=$1 limit=$2; shift 2
  timeout "$limit" python3 -m pytest -q --tb=short -p no:cacheprovider "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $? -- $(tail -1 "$OUT/$name.log")"
}
run call4-review-tests 300 -k "not smollm" tests/test_request_errors.py tests/test_beam_search.py \
  tests/test_scheduler.py tests/test_cli_errors.py
run call4-graphs-async 260 -k "not smollm" tests/test_cuda_graphs.py tests/test_async_scheduling.py
