"""What each compiled decode-attention kernel costs an SM (sessions 16-18's call scripts print it)."""

from pagedllm.attention.triton import decode


def print_regs() -> None:
    """Each compiled variant of the decode kernel: its constants, registers, spills and shared memory."""
    names = ("KV_PER_PROG", "BLOCK_N", "HEAD_DIM", "SINGLE_SPLIT", "FUSED_MERGE", "DECODES_ONLY", "CARRY_IDS")
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
