"""Session 23: `pagedllm bench decode` with decode attention's K/V tiles by TMA where the plan runs one
split, to see whether calls 1-2's kernel-level gains (Qwen3-0.6B's layout at 64 x 528 3-4% faster in
16-token TMA tiles, three stages) reach whole steps under PDL.

- ``S23_TMA=W,S``: one-split plans launch with ``DecodeLaunch(tma=True, block_n=16)``, W warps, S stages
  (the plan's KV heads a program and split kept). Unset: main's launch.
- ``S16_REGS=1``: each compiled decode kernel's registers and shared memory at the end.

Taken back after calls 1-3: this script runs on 6749555's tree (``benchmarks/results/session23/
decode-tma-attempt.diff`` on 17ceb41), not on main, whose ``DecodeLaunch`` has no ``tma`` field.

The rest of the command line is ``pagedllm bench decode``'s; the engine's warm-up runs a step through the
same policy, so every variant it launches is compiled before timing.
"""

import dataclasses
import os
import sys

from kernel_costs import print_regs  # beside this script

from pagedllm.attention.triton import backend, decode
from pagedllm.cli import main

TMA = tuple(int(x) for x in os.environ["S23_TMA"].split(",")) if os.environ.get("S23_TMA") else None
_launch_as_planned = backend.paged_decode_attention


def _policy_launch(out, query, kv_cache, block_tables, seq_lens, query_start_loc, max_seq_len, scale,  # type: ignore[no-untyped-def]
                   *, num_splits=None, decodes_only=False, launch=None):  # fmt: skip
    launch = launch or decode.DecodeLaunch()
    plan = decode.decode_variant(
        seq_lens.shape[0], kv_cache.shape[3], query.shape[2], max_seq_len, query.device, num_splits, launch
    )
    if TMA and plan.single and decode.tma_kv_applies(kv_cache, 16):
        warps, stages = TMA
        launch = dataclasses.replace(launch, kv_heads_per_program=plan.kv_per_prog, tma=True, block_n=16,
                                     num_warps=warps, num_stages=stages)  # fmt: skip
        num_splits = plan.num_splits
    _launch_as_planned(out, query, kv_cache, block_tables, seq_lens, query_start_loc, max_seq_len, scale,
                       num_splits=num_splits, decodes_only=decodes_only, launch=launch)  # fmt: skip


backend.paged_decode_attention = _policy_launch  # type: ignore[assignment]

code = main(["bench", "decode", *sys.argv[1:]])
if os.environ.get("S16_REGS") == "1":
    print_regs()
sys.exit(code)
