"""What each compiled variant of a Triton kernel costs an SM: registers, spills and shared memory (the
session 15-18 call scripts print it after a run)."""

from typing import Any

from pagedllm.attention.triton import decode
from pagedllm.model.layers import skinny_linear

DECODE_CONSTANTS = (
    "KV_PER_PROG",
    "BLOCK_N",
    "HEAD_DIM",
    "SINGLE_SPLIT",
    "FUSED_MERGE",
    "DECODES_ONLY",
    "CARRY_IDS",
    "TMA_KV",
)  # fmt: skip (TMA_KV: session 23's experiment tree only)
SKINNY_CONSTANTS = ("BLOCK_M", "BLOCK_N", "BLOCK_K", "SPLIT_K", "GATED", "ROPE", "NORM_OUT", "NORMED_INPUT",
                    "EARLY_EPILOGUE")  # fmt: skip


def print_kernel_costs(label: str, fn: Any, names: tuple[str, ...]) -> None:
    """One line per compiled variant of the jitted ``fn``: the ``names`` among its constants, then its
    registers a thread, spills and shared memory in bytes."""
    for cache in fn.device_caches.values():
        kernels = cache[0] if isinstance(cache, tuple) else cache
        for kernel in kernels.values():
            try:
                items = kernel.src.constants.items()
                consts = {fn.arg_names[k[0] if isinstance(k, tuple) else k]: v for k, v in items}
            except Exception:
                consts = {}
            picked = {n: consts.get(n) for n in names if n in consts}
            print(f"{label} {picked} warps {kernel.metadata.num_warps} stages {kernel.metadata.num_stages} "
                  f"regs {getattr(kernel, 'n_regs', '?')} spills {getattr(kernel, 'n_spills', '?')} "
                  f"shared {kernel.metadata.shared}")  # fmt: skip


def print_regs() -> None:
    """The decode-attention kernel's variants."""
    print_kernel_costs("decode kernel", decode._decode_split_kernel, DECODE_CONSTANTS)


def print_skinny_spills() -> None:
    """The skinny linear's variants."""
    print_kernel_costs("skinny kernel", skinny_linear._skinny_linear_kernel, SKINNY_CONSTANTS)
