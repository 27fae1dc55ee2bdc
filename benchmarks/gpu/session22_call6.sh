#!/bin/bash
# Session 22, call 6: the engine's prefill kernel against cuDNN at Llama 16 x 1k: instruction mix and
# per-SASS-instruction counts (Nsight Compute), and the kernel's SASS.
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl
export PYTHONPATH=/tmp/site:$PWD
mkdir -p $OUT/asm
timeout 300 ncu --profile-from-start off -o $OUT/prefill --section InstructionStats --section SourceCounters \
  --section WarpStateStats --section SpeedOfLight \
  python3 benchmarks/gpu/session22_ncu_prefill.py $OUT/asm 16 1024 > $OUT/ncu-run.txt 2>&1
tail -5 $OUT/ncu-run.txt
ncu -i $OUT/prefill.ncu-rep --page details --print-details all > $OUT/details.txt 2>&1 || true
ncu -i $OUT/prefill.ncu-rep --page source --csv --print-source sass > $OUT/source.csv 2>&1 || true
ncu -i $OUT/prefill.ncu-rep --page raw --csv > $OUT/raw.csv 2>&1 || true
rm -f $OUT/prefill.ncu-rep
wc -c $OUT/*.txt $OUT/*.csv $OUT/asm/*
grep -n -i -E "opcode|Executed Instructions|Issued Instructions" $OUT/details.txt | head -20
