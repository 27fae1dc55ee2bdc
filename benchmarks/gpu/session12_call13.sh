#!/bin/bash
# Session 12, GPU call 13 (H100): Qwen3's per-head q/k norms and rotary in one launch (qk_norm_rope)
# against main at 20a78ed (a copy in .gpuwork/s12/base; three launches plus two copies a layer), Qwen3-0.6B
# decode steps at 64 and 256 x 512, two interleaved rounds; then the GPU tests of the kernel and of whole
# models through the Triton backend.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { name=$1; tree=$2; model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 -m pagedllm.cli bench decode \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | tail -3); }
for r in 1 2; do
  for s in now base; do echo "== qwen3 $s $r"
    tree=$([ $s = base ] && echo $PWD/.gpuwork/s12/base || echo $PWD)
    dec decode-qwen3-qknorm-$s-$r $tree qwen3-0.6b --batch-sizes 64 256 --context 512
  done
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call13-decode.json
export PYTHONPATH=/tmp/site:$PWD
timeout 400 python3 -m pytest -q -x tests/test_qk_norm_rope.py tests/test_fused_ops.py tests/test_rotary_side_by_side.py \
  tests/test_triton_generation.py 2>&1 | tee $OUT/tests-call13.log | tail -3
