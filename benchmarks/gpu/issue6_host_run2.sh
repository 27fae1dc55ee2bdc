#!/bin/bash
# Issue 6 (host overhead), GPU run 2 (H100): Llama-3.2-1B decode steps at batch 64 and 256 (context 512)
# for this branch with async scheduling, without it, and for main; a torch.profiler summary of the
# async steps. Run from the repo root with the branch copied to .gpuwork/issue6.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .cache/gpu-wheels/*.whl 2>&1 | tail -1
ROOT=$PWD
M=$ROOT/.gpuwork/shared_models
export PYTHONUNBUFFERED=1
W="--model $M/llama-3.2-1b.json --load-format dummy --max-model-len 2048 --batch-sizes 64 256 --context 512 --steps 32"
dec() { timeout 90 python3 -m pagedllm.cli bench decode $W "$@" 2>&1 | grep -v -i warn | tail -3; }
cd $ROOT/.gpuwork/issue6 && export PYTHONPATH=/tmp/site:$PWD
echo "== branch, async scheduling"; dec --profile-dir $OUT --output-json $OUT/decode-async.json
echo "== branch, synchronous"; dec --no-async-scheduling --output-json $OUT/decode-sync.json
cd $ROOT && export PYTHONPATH=/tmp/site:$ROOT
echo "== main"; dec --output-json $OUT/decode-main.json
cd $ROOT/.gpuwork/issue6 && export PYTHONPATH=/tmp/site:$PWD
# Run 1 ran out of its time box in these (each test builds engines with graphs for 256 sequences).
timeout 170 python3 -m pytest -q -x -m "not slow" tests/test_async_scheduling.py 2>&1 | tail -4
