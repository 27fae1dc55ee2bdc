# Sourced by the A/B call scripts of sessions 16-17 (run from the checkout's root on the device):
#   source benchmarks/gpu/decode_ab.sh NAME
# installs the serve wheels into /tmp/site, copies the `bench decode` driver (session16_decode.py) and
# its helper to /tmp, sets M (the model configs), J (/tmp/NAME, emptied: one JSON a run) and S
# (.gpuwork/s17, the code trees), and defines
#   dec NAME TREE MODEL [bench decode args...]
# which runs `bench decode` on the pagedllm of code tree TREE and writes $J/NAME.json; its output drops
# warnings and the table headers, and of the kernel listing (S16_REGS=1) the mixed-batch and
# fused-merge variants.
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl 2>&1 | grep -v "already exists" | tail -2
export PYTHONUNBUFFERED=1
M=$PWD/.gpuwork/shared_models; J=/tmp/$1; rm -rf $J; mkdir -p $J; S=$PWD/.gpuwork/s17
cp benchmarks/gpu/session16_decode.py /tmp/s16_decode.py; cp benchmarks/gpu/kernel_costs.py /tmp/
dec() { local name=$1 tree=$2 model=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree timeout 150 python3 /tmp/s16_decode.py \
  --load-format dummy --max-model-len 2048 --steps 32 --output-json $J/$name.json --model $M/$model.json "$@" 2>&1 \
  | grep -v -i warn | grep -v "^written" | grep -v "batch  step" | grep -v "DECODES_ONLY': True" | grep -v "FUSED_MERGE': True"); }
