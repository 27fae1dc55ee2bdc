"""KV memory policies by name: the one place the engine and the simulator build their KV cache manager."""

from __future__ import annotations

from pagedllm.core.contiguous_kv_cache_manager import ContiguousKVCacheManager
from pagedllm.core.kv_cache_manager import KVCacheManager

# paged: blocks taken as tokens arrive (the default). contiguous: max_model_len reserved per request.
KV_POLICIES = ("paged", "contiguous")


def make_kv_cache_manager(
    policy: str,
    num_blocks: int,
    block_size: int,
    max_model_len: int,
    enable_prefix_caching: bool = False,
    num_cpu_blocks: int = 0,
) -> KVCacheManager:
    """``num_cpu_blocks``: the swap space (paged only: a contiguous reservation never preempts)."""
    if policy == "paged":
        return KVCacheManager(
            num_blocks, block_size, enable_prefix_caching=enable_prefix_caching, num_cpu_blocks=num_cpu_blocks
        )
    if policy == "contiguous":
        if enable_prefix_caching:
            raise ValueError(
                "kv_policy='contiguous' does not share blocks: it is the no-sharing baseline; "
                "use kv_policy='paged' for prefix caching"
            )
        return ContiguousKVCacheManager(num_blocks, block_size, max_model_len)
    raise ValueError(f"kv_policy={policy!r} is not supported; choose one of {KV_POLICIES}")


def kv_policy_name(kv: KVCacheManager) -> str:
    """The policy name a manager implements (the inverse of ``make_kv_cache_manager``)."""
    return "contiguous" if isinstance(kv, ContiguousKVCacheManager) else "paged"
