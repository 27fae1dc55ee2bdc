"""Session 17: the decode-attention kernel as Triton compiled it for this GPU (TTGIR, PTX, SASS), for
the 1B and Qwen3-0.6B layouts at 64 x 528 (the engine's plan): ``$OUT/decode-<layout>.{ttgir,ptx,sass}``.
"""

import os

import torch

from pagedllm.attention.triton import decode, paged_decode_attention
from pagedllm.bench.kernels import make_set

LAYOUTS = {"1b": (32, 8, 64), "qwen3": (16, 8, 128)}
out_dir = os.environ.get("OUT", ".")
device = torch.device("cuda")
for name, layout in LAYOUTS.items():
    s = make_set(64, 528, 1, 16, layout, torch.bfloat16, device)
    md, out = s.metadata, torch.empty_like(s.query)
    paged_decode_attention(out, s.query, s.cache, md.block_tables, md.seq_lens, md.query_start_loc, 528,
                           layout[2] ** -0.5)  # fmt: skip
    torch.cuda.synchronize()
    for cache in decode._decode_split_kernel.device_caches.values():
        kernels = cache[0] if isinstance(cache, tuple) else cache
        for kernel in kernels.values():
            for ext in ("ttgir", "ptx", "sass"):
                try:
                    text = kernel.asm[ext]
                except Exception as e:
                    text = f"unavailable: {e!r}"
                with open(os.path.join(out_dir, f"decode-{name}.{ext}"), "w") as f:
                    f.write(text if isinstance(text, str) else text.decode())
    decode._decode_split_kernel.device_caches.clear()
