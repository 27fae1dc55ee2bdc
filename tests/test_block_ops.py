"""Whole-block moves on the KV cache: copy-on-write copies and swaps between devices."""

from __future__ import annotations

import pytest
import torch

from pagedllm.worker.block_ops import copy_blocks, swap_blocks
from pagedllm.worker.kv_cache import new_kv_cache, stores_head_major

ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"


def test_copy_blocks_copies_every_layer_and_reads_sources_before_writing():
    caches = [torch.randn(2, 6, 4, 2, 8, device=DEVICE) for _ in range(3)]
    before = [c.clone() for c in caches]
    pairs = [(0, 3), (3, 5), (1, 0)]  # block 3 is read and then overwritten, block 0 likewise
    copy_blocks(caches, pairs)
    for cache, old in zip(caches, before, strict=True):
        for src, dst in pairs:
            assert torch.equal(cache[:, dst], old[:, src])
        assert torch.equal(cache[:, [2, 4]], old[:, [2, 4]])  # untouched blocks


def test_swap_blocks_out_and_back_round_trips():
    pin = ON_GPU  # pinned host memory needs a CUDA device
    device_caches = [torch.randn(2, 8, 4, 2, 8, device=DEVICE, dtype=torch.float16) for _ in range(2)]
    host_caches = [torch.zeros(2, 5, 4, 2, 8, dtype=torch.float16, pin_memory=pin) for _ in range(2)]
    swap_out = torch.tensor([[6, 0], [2, 4], [7, 1]])
    swap_blocks(device_caches, host_caches, swap_out)
    for dev, host in zip(device_caches, host_caches, strict=True):
        assert torch.equal(host[:, [0, 4, 1]], dev[:, [6, 2, 7]].cpu())
    restored = [torch.full_like(c, float("nan")) for c in device_caches]
    swap_blocks(host_caches, restored, [(0, 6), (4, 2), (1, 7)])
    for dev, back in zip(device_caches, restored, strict=True):
        assert torch.equal(back[:, [6, 2, 7]], dev[:, [6, 2, 7]])
        assert back[:, [0, 1, 3, 4, 5]].isnan().all()


def test_engine_caches_store_head_major_on_cuda_and_token_major_on_the_cpu():
    """``new_kv_cache`` picks the order that measured fastest where the cache lives: one KV head of a
    block in one piece for the GPU kernels, whole token rows for the CPU reference backend's gather."""
    assert stores_head_major(torch.device("cuda", 0))
    assert not stores_head_major(torch.device("cpu"))
    cpu_cache = new_kv_cache(6, 4, 3, 8, torch.float16, "cpu")
    assert cpu_cache.shape == (2, 6, 4, 3, 8)
    assert cpu_cache.is_contiguous()
    head_major = (6 * 3 * 4 * 8, 3 * 4 * 8, 8, 4 * 8, 1)
    assert new_kv_cache(6, 4, 3, 8, torch.float16, "cpu", head_major=True).stride() == head_major
    if ON_GPU:
        assert new_kv_cache(6, 4, 3, 8, torch.float16, "cuda").stride() == head_major


@pytest.mark.parametrize("head_major", [True, False])
def test_block_copies_and_swaps_move_the_values_the_cache_view_shows_in_either_storage_order(head_major):
    """Head-major storage keeps a block's tokens of one KV head in one contiguous piece; copies and
    swaps (also between a head-major device cache and a token-major host one) move what the standard
    ``[2, blocks, block_size, kv_heads, dim]`` view shows, whatever the order."""
    cache = new_kv_cache(6, 4, 3, 8, torch.float16, DEVICE, head_major=head_major)
    assert cache.shape == (2, 6, 4, 3, 8)
    one_head_of_a_block = cache[1, 2, :, 1]  # [block_size, dim]
    assert one_head_of_a_block.is_contiguous() == head_major
    cache.copy_(torch.randn(cache.shape, dtype=torch.float16))
    before = cache.clone()
    copy_blocks([cache], [(0, 3), (5, 1)])
    assert torch.equal(cache[:, [3, 1]], before[:, [0, 5]])
    host = new_kv_cache(3, 4, 3, 8, torch.float16, "cpu", pin_memory=ON_GPU)
    swap_blocks([cache], [host], [(2, 0), (4, 2)])
    assert torch.equal(host[:, [0, 2]], cache[:, [2, 4]].cpu())
    back = new_kv_cache(6, 4, 3, 8, torch.float16, DEVICE, head_major=head_major).fill_(float("nan"))
    swap_blocks([host], [back], [(0, 5)])
    assert torch.equal(back[:, 5], cache[:, 2])
    assert back[:, :5].isnan().all()
