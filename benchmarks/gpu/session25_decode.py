"""Session 25: `pagedllm bench decode` with the norm producers (o_proj, down) of steps of at most 64 rows
planned as ``S25_PRODUCER=BM`` rows a program over the whole input (no split, so no merge), keeping the
plan's features a program, 256-input tiles, four stages: ``S25_PRODUCER=32`` gives the 1B's and
Qwen3-0.6B's producers 128 programs, as their split plans have (``session25_producer_rows.py``).
Unset: main as it is. The rest of the command line is ``pagedllm bench decode``'s.
"""

import os
import sys

from pagedllm.cli import main
from pagedllm.model.layers import skinny_linear

ROWS = int(os.environ.get("S25_PRODUCER", "0"))
_plan_add_norm = skinny_linear.maybe_skinny_linear_add_norm
_skinny_config = skinny_linear.skinny_config


def _row_split_config(n, k, smem_budget=skinny_linear.SMEM_BUDGET, rows=skinny_linear.NARROW_ROWS):  # type: ignore[no-untyped-def]
    plan = _skinny_config(n, k, smem_budget, rows)
    if plan is None or rows > skinny_linear.NARROW_ROWS:
        return plan
    return skinny_linear.SkinnyConfig(ROWS, plan.block_n, 256, 1, 4, 4)


def _add_norm_with_row_split(*args, **kwargs):  # type: ignore[no-untyped-def]
    skinny_linear.skinny_config = _row_split_config
    try:
        return _plan_add_norm(*args, **kwargs)
    finally:
        skinny_linear.skinny_config = _skinny_config


if ROWS:
    skinny_linear.maybe_skinny_linear_add_norm = _add_norm_with_row_split

if __name__ == "__main__":
    sys.exit(main())
