#!/bin/bash
# Session 25, call 3 (H100; carry .whl/serve, .gpuwork/shared_models and .gpuwork/base): the values of
# the step's K/V loaded with the keys, right after the PDL wait, in rotary's and qk_norm_rope's K/V
# store (this tree) against loading them after the keys' stores (.gpuwork/base: `git archive 3c54405
# pagedllm`). First the GPU tests of the two kernels and of fused launches against the float32 truth,
# then whole decode steps of Qwen3-0.6B (qk_norm_rope at every size) and the 1B (rotary at 256 rows;
# its 64-row step runs neither kernel: a control), two interleaved rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
PYTHONPATH=/tmp/site:$PWD timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_kv_store_in_rotary.py \
  tests/test_qk_norm_rope.py tests/test_triton_generation.py -k "not identical_to_reference" 2>&1 \
  | grep -v -i warn | tail -4 | tee $OUT/call3-tests.log
ROOT=$PWD M=$PWD/.gpuwork/shared_models J=/tmp/json25; mkdir -p $J
for r in 1 2; do
  for tree in base new; do
    if [ $tree = base ]; then P=/tmp/site:$ROOT/.gpuwork/base; else P=/tmp/site:$ROOT; fi
    # From a neutral folder: `python -m` puts the working folder first on the path.
    (cd /tmp && PYTHONPATH=$P python3 -c "import pagedllm.model.layers.fused_ops as f; print(f.__file__, 'load_token_v' in vars(f))")
    for m in qwen3-0.6b llama-3.2-1b; do
      echo "== $m $tree round $r"
      (cd /tmp && PYTHONPATH=$P timeout 100 python3 -m pagedllm.cli bench decode --model $M/$m.json --load-format dummy \
        --max-model-len 2048 --batch-sizes 64 256 --context 512 --steps 32 --output-json $J/$m-$tree-$r.json 2>&1 \
        | grep -v -i warn | grep -v "^written")
    done
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call3-decode.json
