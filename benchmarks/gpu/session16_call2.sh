#!/bin/bash
# Session 16, GPU call 2 (H100): the Qwen3-0.6B workload end to end (`bench throughput`, 256 prompts, input and
# output lengths uniform in 100-1024) with the Triton linears up to 128 rows (main) against cuBLAS above 64
# rows (PAGEDLLM_SKINNY_MAX_ROWS=64), after one warm-up run, two interleaved rounds; then the 1B's decode step
# at 256 x 512 with four KV heads per decode-attention program against the plan's two, two rounds.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
M=$PWD/.gpuwork/shared_models; J=/tmp/json; mkdir -p $J
tp() { timeout 150 python3 -m pagedllm.cli bench throughput --load-format dummy --max-model-len 2048 "$@" 2>&1 \
  | grep -v -i warn | grep -E "Throughput|oofline|rror|Traceback"; }
echo "== warm-up"; tp --model $M/qwen3-0.6b.json --input-len 512 --output-len 8 --num-prompts 64
for r in 1 2; do
  for rows in 128 64; do
    echo "== qwen3 max_rows $rows round $r"; PAGEDLLM_SKINNY_MAX_ROWS=$rows tp --model $M/qwen3-0.6b.json \
      --input-len 100-1024 --output-len 100-1024 --num-prompts 256 --output-json $OUT/throughput-qwen3-rows$rows-$r.json
  done
done
dec() { local name=$1; shift; timeout 120 python3 benchmarks/gpu/session16_decode.py --load-format dummy --max-model-len 2048 \
  --steps 32 --output-json $J/$name.json --model $M/llama-3.2-1b.json --batch-sizes 256 --context 512 2>&1 \
  | grep -v -i warn | grep -v "^written" | tail -1; }
for r in 1 2; do
  echo "== 1b 256 pairs $r"; dec decode-1b-pairs-$r
  echo "== 1b 256 four $r"; S16_FOUR_HEADS=1 dec decode-1b-four-$r
done
python3 benchmarks/gpu/merge_json.py $J $OUT/call2-decode.json
