#!/bin/bash
# Session 15, GPU call 15 (H100): main with the wide plans as committed (a hand-over producer over an unsplit
# input loads its residual after the loop, everything else before it): decode steps of the 8B at 128 x 1024
# (and cuBLAS above 64 rows beside it), the 1B and Qwen3-0.6B at 96/128 x 512, one round; then the GPU tests
# of the linears, the norm hand-over, generation in bf16 and the CUDA and piecewise graphs.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
dec() { local name=$1 model=$2; shift 2; timeout 200 python3 -m pagedllm.cli bench decode --load-format dummy \
  --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 | grep -v -i warn | grep -v "^written" | grep -v "batch  step" | tail -2; }
echo "== 8b"; dec 8b llama-3.1-8b --batch-sizes 128 --context 1024
echo "== 8b cublas"; PAGEDLLM_SKINNY_MAX_ROWS=64 dec 8b-cublas llama-3.1-8b --batch-sizes 128 --context 1024
echo "== 1b"; dec 1b llama-3.2-1b --batch-sizes 96 128 --context 512
echo "== qwen3"; dec qwen3 qwen3-0.6b --batch-sizes 96 128 --context 512
python3 benchmarks/gpu/merge_json.py $J $OUT/call15-decode.json
echo "== linears"; timeout 80 python3 -m pytest -q -x tests/test_skinny_linear.py tests/test_norm_hand_over.py 2>&1 | tail -2
echo "== generation bf16"; timeout 200 python3 -m pytest -q -x tests/test_triton_generation.py -k bfloat16 2>&1 | tail -3
echo "== graphs"; timeout 150 python3 -m pytest -q -x tests/test_piecewise_graphs.py tests/test_cuda_graphs.py 2>&1 | tail -3
