#!/bin/bash
# Session 17, GPU call 6 (H100): the decode-attention kernel's TTGIR, PTX and SASS as Triton 3.6 compiled
# it for the 1B and Qwen3-0.6B layouts at 64 x 528 (session17_dump_decode.py).
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/serve/*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD PATH=$PATH:/usr/local/cuda/bin
python3 benchmarks/gpu/session17_dump_decode.py
