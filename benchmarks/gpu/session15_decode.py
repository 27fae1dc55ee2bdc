"""Session 15: `pagedllm bench decode` with the A/B switches of the wide skinny plans.

- ``S15_EARLY_EPILOGUE=1``: the wide plans load their epilogue's inputs before the loop, as the
  weight-streaming ones do. (Call 3 ran an earlier form of this switch, when 128-row tiles loaded them
  late and 64-row tiles early whatever the plan: it set that rule's row threshold out of reach.)
- ``S15_NO_WIDE_ROPE=1``: above 64 rows the qkv projection runs without rotary in its epilogue (rotary,
  storing the step's K/V, is its own launch then, as with cuBLAS).
- ``S15_LATE_EPILOGUE=1``: every wide plan loads its epilogue's inputs after the loop (64-row tiles too).
- ``S15_LATE_PRODUCERS_ONLY=1``: of the wide plans, only the norm's producers (o_proj, down) load their
  epilogue's inputs (the residual) after the loop; the consumers (qkv, gate_up) load theirs (the norm's
  sums, rotary's tables) before it.
- ``S15_NO_WIDE_HANDOVER=1``: above 64 rows the norms are not handed over between the linears (o_proj
  and down, then the RMSNorm kernel, then plain qkv and gate_up launches).
- ``S15_SPILLS=1``: after the run, each compiled skinny kernel's registers, spills and shared memory.

(``PAGEDLLM_SKINNY_MAX_ROWS=64`` is the engine's own switch back to cuBLAS above 64 rows.) The rest of the
command line is ``pagedllm bench decode``'s.
"""

import dataclasses
import os
import sys

from pagedllm.cli import main
from pagedllm.model.layers import skinny_linear

if os.environ.get("S15_EARLY_EPILOGUE") == "1":
    late_plan = skinny_linear.wide_config

    def _early_plan(*args, **kwargs):  # type: ignore[no-untyped-def]
        plan = late_plan(*args, **kwargs)
        return None if plan is None else dataclasses.replace(plan, late_epilogue=False)

    skinny_linear.wide_config = _early_plan  # type: ignore[assignment]

if os.environ.get("S15_LATE_EPILOGUE") == "1":
    mixed_plan = skinny_linear.wide_config

    def _late_plan(*args, **kwargs):  # type: ignore[no-untyped-def]
        plan = mixed_plan(*args, **kwargs)
        return None if plan is None else dataclasses.replace(plan, late_epilogue=True)

    skinny_linear.wide_config = _late_plan  # type: ignore[assignment]

if os.environ.get("S15_LATE_PRODUCERS_ONLY") == "1":
    launch = skinny_linear._launch

    def _early_consumers(x, weight, config, out, bias, use_pdl, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("add_norm") is None:
            config = dataclasses.replace(config, late_epilogue=False)
        return launch(x, weight, config, out, bias, use_pdl, **kwargs)

    skinny_linear._launch = _early_consumers  # type: ignore[assignment]

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


def _print_spills() -> None:
    names = ("BLOCK_M", "BLOCK_N", "BLOCK_K", "SPLIT_K", "GATED", "ROPE", "NORM_OUT", "NORMED_INPUT",
             "EARLY_EPILOGUE")  # fmt: skip
    fn = skinny_linear._skinny_linear_kernel
    for cache in fn.device_caches.values():
        kernels = cache[0] if isinstance(cache, tuple) else cache
        for kernel in kernels.values():
            try:
                items = kernel.src.constants.items()
                consts = {fn.arg_names[k[0] if isinstance(k, tuple) else k]: v for k, v in items}
            except Exception:
                consts = {}
            picked = {n: consts.get(n) for n in names if n in consts}
            print(f"skinny kernel {picked} regs {getattr(kernel, 'n_regs', '?')} spills "
                  f"{getattr(kernel, 'n_spills', '?')} shared {kernel.metadata.shared}")  # fmt: skip


code = main(["bench", "decode", *sys.argv[1:]])
if os.environ.get("S15_SPILLS") == "1":
    _print_spills()
sys.exit(code)
