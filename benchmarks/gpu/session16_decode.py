"""Session 16: `pagedllm bench decode`, then each compiled decode-attention kernel's registers, spills and
shared memory (``S16_REGS=1``), to see what reading the first K/V tile before the PDL wait costs the kernel.

``S16_FOUR_HEADS=1``: where the plan pairs KV heads (the 1B at 256 rows), four per program instead, in
32-token tiles two stages deep (session 11's fastest launch for it alone, ``joint-sweep.json``).

The rest of the command line is ``pagedllm bench decode``'s. The ``pagedllm`` it imports is the first on
``PYTHONPATH``: the call scripts put the tree under test there (and run from its root).
"""

import os
import sys

from kernel_costs import print_regs  # beside this script

from pagedllm.attention.triton import decode
from pagedllm.cli import main

if os.environ.get("S16_FOUR_HEADS") == "1":
    planned = decode.choose_decode_plan
    launched = decode.default_decode_launch

    def _four(num_seqs, num_kv_heads, head_dim, max_seq_len, num_sms):  # type: ignore[no-untyped-def]
        per_program, splits = planned(num_seqs, num_kv_heads, head_dim, max_seq_len, num_sms)
        return (4, splits) if per_program == 2 and num_kv_heads % 4 == 0 else (per_program, splits)

    def _four_launch(head_dim, block_size, kv_per_prog=1, *rest):  # type: ignore[no-untyped-def]
        # (32, 4, 2) as a 3-tuple in the trees of sessions 16-17, whose launches unpack three values
        if kv_per_prog == 4:
            return (32, 4, 2) if not rest else decode.DecodeTiles(32, 4, 2, len(rest) > 1 and bool(rest[1]))
        return launched(head_dim, block_size, kv_per_prog, *rest)

    decode.choose_decode_plan = _four  # type: ignore[assignment]
    decode.default_decode_launch = _four_launch  # type: ignore[assignment]

code = main(["bench", "decode", *sys.argv[1:]])
if os.environ.get("S16_REGS") == "1":
    print_regs()
sys.exit(code)
