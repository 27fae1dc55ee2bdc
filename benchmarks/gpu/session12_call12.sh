#!/bin/bash
# Session 12, GPU call 12 (H100): profiles of decode steps on main after session 12 (kernels one after
# another: PAGEDLLM_PDL=0, so the skinny linears are cuBLAS there): Qwen3-0.6B at 64 x 512, whose floor is
# mostly K/V bytes (it runs at 1.6x of it), and Llama-3.2-1B at 64 x 512.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models
for model in qwen3-0.6b llama-3.2-1b; do
  for pdl in 0 1; do echo "== $model pdl=$pdl"
    PAGEDLLM_PDL=$pdl timeout 150 python3 -m pagedllm.cli bench decode --load-format dummy --max-model-len 2048 --steps 32 \
      --model $M/$model.json --batch-sizes 64 --context 512 --output-json $OUT/decode-$model-pdl$pdl.json \
      --profile-dir $OUT/prof-$model-pdl$pdl 2>&1 | grep -v -i warn | tail -2
  done
done
ls -R $OUT | head -30
