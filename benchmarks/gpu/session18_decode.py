"""Session 18: `pagedllm bench decode` with the decode attention's launch chosen by a policy from the
environment, to measure carried block ids (``DecodeLaunch.carry_block_ids``) in whole steps.

- ``S18_CARRY``: unset, main's launch (carried ids where ``default_decode_launch`` says: one KV head of
  <= 64 dims per program in one split); ``off``: never (main before session 18); ``kv1``: wherever the
  plan has one KV head per program and one split, whatever the head dim (Qwen3-0.6B too); ``all``:
  every plan (the 1B's head pairs at 256 rows too).
- ``S18_BLOCK_N``, ``S18_STAGES``: the tile and pipeline depth of the launches ``kv1``/``all`` change
  (default: the per-shape default).
- ``S18_SPLITS``: where the plan has one KV head per program and one split, this many splits instead
  (fused merge), e.g. 2: twice the programs, which fit now that carried 32-token tiles take 60 registers.
- ``S16_REGS=1``: each compiled decode kernel's registers, spills and shared memory at the end.

The rest of the command line is ``pagedllm bench decode``'s. The engine's warm-up compiles every variant
the policy launches: it asks the backend for the plan's variant and runs a step through the same policy.
"""

import dataclasses
import os
import sys

from kernel_costs import print_regs  # beside this script

from pagedllm.attention.triton import backend, decode
from pagedllm.cli import main

CARRY = os.environ.get("S18_CARRY", "")
BLOCK_N = int(os.environ["S18_BLOCK_N"]) if os.environ.get("S18_BLOCK_N") else None
STAGES = int(os.environ["S18_STAGES"]) if os.environ.get("S18_STAGES") else None
SPLITS = int(os.environ["S18_SPLITS"]) if os.environ.get("S18_SPLITS") else None
_launch_as_planned = backend.paged_decode_attention


def _policy_launch(out, query, kv_cache, block_tables, seq_lens, query_start_loc, max_seq_len, scale,  # type: ignore[no-untyped-def]
                   *, num_splits=None, decodes_only=False, launch=None):  # fmt: skip
    launch = launch or decode.DecodeLaunch()
    plan = decode.decode_variant(
        seq_lens.shape[0], kv_cache.shape[3], query.shape[2], max_seq_len, query.device, num_splits, launch
    )
    one_head_one_split = plan.kv_per_prog == 1 and plan.single
    # The plan pinned (KV heads per program, splits), so that only the policy's fields change.
    launch = dataclasses.replace(launch, kv_heads_per_program=plan.kv_per_prog)
    num_splits = plan.num_splits
    if CARRY == "off":  # the launch before session 18 (with the tile for uncarried ids)
        launch = dataclasses.replace(launch, carry_block_ids=False)
    if CARRY == "all" or (CARRY == "kv1" and one_head_one_split):
        launch = dataclasses.replace(launch, block_n=BLOCK_N, num_stages=STAGES, carry_block_ids=True)
    if SPLITS and one_head_one_split:
        launch = dataclasses.replace(launch, fused_merge=True)
        num_splits = SPLITS
    _launch_as_planned(out, query, kv_cache, block_tables, seq_lens, query_start_loc, max_seq_len, scale,
                       num_splits=num_splits, decodes_only=decodes_only, launch=launch)  # fmt: skip


backend.paged_decode_attention = _policy_launch  # type: ignore[assignment]

code = main(["bench", "decode", *sys.argv[1:]])
if os.environ.get("S16_REGS") == "1":
    print_regs()
sys.exit(code)
