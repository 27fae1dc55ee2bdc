"""Session 16: `pagedllm bench decode`, then each compiled decode-attention kernel's registers, spills and
shared memory (``S16_REGS=1``), to see what reading the first K/V tile before the PDL wait costs the kernel.

The rest of the command line is ``pagedllm bench decode``'s. Run from the root of the tree under test:
``python3 -m`` imports that tree's ``pagedllm``.
"""

import os
import sys

from pagedllm.attention.triton import decode
from pagedllm.cli import main


def _print_regs() -> None:
    names = ("KV_PER_PROG", "BLOCK_N", "HEAD_DIM", "SINGLE_SPLIT", "FUSED_MERGE", "DECODES_ONLY")
    fn = decode._decode_split_kernel
    for cache in fn.device_caches.values():
        kernels = cache[0] if isinstance(cache, tuple) else cache
        for kernel in kernels.values():
            try:
                items = kernel.src.constants.items()
                consts = {fn.arg_names[k[0] if isinstance(k, tuple) else k]: v for k, v in items}
            except Exception:
                consts = {}
            picked = {n: consts.get(n) for n in names if n in consts}
            print(f"decode kernel {picked} regs {getattr(kernel, 'n_regs', '?')} spills "
                  f"{getattr(kernel, 'n_spills', '?')} shared {kernel.metadata.shared}")  # fmt: skip


code = main(["bench", "decode", *sys.argv[1:]])
if os.environ.get("S16_REGS") == "1":
    _print_regs()
sys.exit(code)
