"""Session 15: `pagedllm bench decode` with the A/B switches of the wide skinny plans.

- ``S15_EARLY_EPILOGUE=1`` / ``S15_LATE_EPILOGUE=1``: every wide plan's hand-over producer loads its
  residual before / after the loop. (Calls 3 and 10-14 ran earlier forms of these switches, when a
  plan's ``late_epilogue`` moved every epilogue input, the norm's sums and rotary's tables too; call 3's
  set a row threshold out of reach; ``S15_LATE_PRODUCERS_ONLY``, calls 14, moved the producers' only,
  which is what ``late_residual`` does for every wide plan now.)
- ``S15_NO_WIDE_HANDOVER=1``: above 64 rows the norms are not handed over between the linears (o_proj
  and down, then the RMSNorm kernel, then plain qkv and gate_up launches).
- ``S15_SPILLS=1``: after the run, each compiled skinny kernel's registers, spills and shared memory.

(``PAGEDLLM_SKINNY_MAX_ROWS=64`` is the engine's own switch back to cuBLAS above 64 rows.) The rest of the
command line is ``pagedllm bench decode``'s.
"""

import dataclasses
import os
import sys

from kernel_costs import print_skinny_spills  # beside this script

from pagedllm.cli import main
from pagedllm.model.layers import skinny_linear

for switch, late in (("S15_EARLY_EPILOGUE", False), ("S15_LATE_EPILOGUE", True)):
    if os.environ.get(switch) == "1":
        planned = skinny_linear.wide_config

        def _placed(*args, _planned=planned, _late=late, **kwargs):  # type: ignore[no-untyped-def]
            plan = _planned(*args, **kwargs)
            return None if plan is None else dataclasses.replace(plan, late_residual=_late)

        skinny_linear.wide_config = _placed  # type: ignore[assignment]

if os.environ.get("S15_NO_WIDE_ROPE") == "1":
    narrow_rotary = skinny_linear.maybe_skinny_rotary_linear

    def _narrow_only(x, weight, bias, rope):  # type: ignore[no-untyped-def]
        rows = skinny_linear.input_rows(x).shape[0]
        return narrow_rotary(x, weight, bias, rope) if rows <= skinny_linear.NARROW_ROWS else None

    skinny_linear.maybe_skinny_rotary_linear = _narrow_only  # type: ignore[assignment]

if os.environ.get("S15_NO_WIDE_HANDOVER") == "1":
    handing_over = skinny_linear.maybe_skinny_linear_add_norm

    def _narrow_hand_over(x, *args):  # type: ignore[no-untyped-def]
        return handing_over(x, *args) if x.shape[0] <= skinny_linear.NARROW_ROWS else None

    skinny_linear.maybe_skinny_linear_add_norm = _narrow_hand_over  # type: ignore[assignment]


code = main(["bench", "decode", *sys.argv[1:]])
if os.environ.get("S15_SPILLS") == "1":
    print_skinny_spills()
sys.exit(code)
