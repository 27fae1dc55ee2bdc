"""When q and k are views side by side in one fused qkv output, the rotary layer rotates both through one
view (one kernel launch on CUDA); anything else keeps them apart."""

from __future__ import annotations

import torch

from pagedllm.model.layers.rotary import side_by_side


def test_views_of_one_qkv_row_block_join_into_q_then_k():
    qkv = torch.randn(5, (4 + 2 * 2) * 8)
    q, k, _ = qkv.split([32, 16, 16], dim=-1)
    joint = side_by_side(q, k)
    assert joint is not None
    torch.testing.assert_close(joint, qkv[:, :48], rtol=0, atol=0)
    joint.zero_()  # the same memory: q and k change, v does not
    assert not q.any() and not k.any() and qkv[:, 48:].abs().sum() > 0


def test_tensors_that_are_not_neighbours_stay_apart():
    qkv = torch.randn(5, 64)
    q, k, v = qkv.split([32, 16, 16], dim=-1)
    assert side_by_side(q.clone(), k.clone()) is None  # separate allocations
    assert side_by_side(q, v) is None  # a gap between them
    assert side_by_side(k, q) is None  # the wrong order
    assert side_by_side(q[:4], k[1:]) is None  # different rows
    assert side_by_side(q.to(torch.float64), k.to(torch.float64)) is None
