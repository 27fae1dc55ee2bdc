"""Linear layers written for tensor parallelism (the size is 1 today).

Column-parallel layers split the output features across ranks, row-parallel layers the input features;
an MLP or attention block is column then row, so only the row layer's output needs an all-reduce.
The fused q/k/v and gate/up projections are column-parallel layers whose checkpoint tensors arrive
one shard at a time (``shard_id``).
"""

from __future__ import annotations

import functools
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

from pagedllm.model.layers.layernorm import RMSNorm
from pagedllm.model.layers.pending_norm import PendingNorm, input_rows
from pagedllm.model.layers.rotary import RotaryEmbedding
from pagedllm.model.layers.tp import all_reduce_sum, divide, get_tp_rank, get_tp_size
from pagedllm.model.layers.weight_loader import ShardId, copy_shard, set_weight_loader


def _linear(x: torch.Tensor | PendingNorm, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """cuBLAS, or on a GPU with PDL for the few rows of a decode step the Triton weight-streaming kernel
    (``skinny_linear``), which overlaps the kernels next to it and takes a norm handed over to it."""
    if weight.is_cuda:
        out = _skinny().maybe_skinny_linear(x, weight, bias)
        if out is not None:
            return out  # type: ignore[no-any-return]
    return F.linear(x.materialize() if isinstance(x, PendingNorm) else x, weight, bias)


@functools.cache
def _skinny() -> ModuleType:
    from pagedllm.model.layers import skinny_linear  # NOTE: imports triton: CUDA only

    return skinny_linear


class _ParallelLinear(nn.Module):
    """Holds a local ``[out_local, in_local]`` weight (and optional ``[out_local]`` bias)."""

    def __init__(
        self,
        in_local: int,
        out_local: int,
        bias: bool,
        tp_size: int | None,
        tp_rank: int | None,
    ) -> None:
        super().__init__()
        self.tp_size = get_tp_size() if tp_size is None else tp_size
        self.tp_rank = get_tp_rank() if tp_rank is None else tp_rank
        if not 0 <= self.tp_rank < self.tp_size:
            raise ValueError(f"tp_rank={self.tp_rank} is outside [0, tp_size={self.tp_size})")
        self.weight = nn.Parameter(torch.empty(out_local, in_local))
        set_weight_loader(self.weight, self.weight_loader)
        self.bias: nn.Parameter | None = None
        if bias:
            self.bias = nn.Parameter(torch.empty(out_local))
            set_weight_loader(self.bias, self.weight_loader)

    def weight_loader(
        self, param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None
    ) -> None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor | PendingNorm) -> torch.Tensor:
        return _linear(x, self.weight, self.bias)


class ColumnParallelLinear(_ParallelLinear):
    """``y = x W^T + b`` with W's rows (output features) split across ranks; output stays sharded."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        bias: bool = False,
        *,
        tp_size: int | None = None,
        tp_rank: int | None = None,
    ) -> None:
        tp = get_tp_size() if tp_size is None else tp_size
        super().__init__(input_size, divide(output_size, tp, "output_size"), bias, tp, tp_rank)
        self.input_size = input_size
        self.output_size = output_size

    def weight_loader(
        self, param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None
    ) -> None:
        if shard_id is not None:
            raise ValueError(f"shard_id={shard_id!r} given for an unfused column-parallel layer")
        local = param.shape[0]
        copy_shard(
            param,
            loaded,
            dim=0,
            full_size=self.output_size,
            src_start=self.tp_rank * local,
            dst_start=0,
            size=local,
        )


class MergedColumnParallelLinear(_ParallelLinear):
    """Several column-parallel layers with one input fused into one matmul (gate and up: shard ids 0, 1).

    Each rank holds its slice of every part, parts in order: ``[part0_local, part1_local, ...]``.
    """

    def __init__(
        self,
        input_size: int,
        output_sizes: list[int],
        bias: bool = False,
        *,
        tp_size: int | None = None,
        tp_rank: int | None = None,
    ) -> None:
        tp = get_tp_size() if tp_size is None else tp_size
        self.output_sizes = list(output_sizes)
        local_sizes = [divide(size, tp, f"output_sizes[{i}]") for i, size in enumerate(output_sizes)]
        super().__init__(input_size, sum(local_sizes), bias, tp, tp_rank)
        self.local_sizes = local_sizes
        self.input_size = input_size

    def fused_silu_and_mul(self, x: torch.Tensor | PendingNorm) -> torch.Tensor | None:
        """``silu(part0) * part1`` of this layer's output (``SiluAndMul(self(x))``) in one kernel, where one
        serves: the skinny linear's gated launch, for the few rows of a CUDA decode step. Else None."""
        if (
            not input_rows(x).is_cuda
            or len(self.local_sizes) != 2
            or self.local_sizes[0] != self.local_sizes[1]
        ):
            return None
        return _skinny().maybe_skinny_silu_and_mul(x, self.weight, self.bias)  # type: ignore[no-any-return]

    def weight_loader(
        self, param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None
    ) -> None:
        if not isinstance(shard_id, int) or not 0 <= shard_id < len(self.output_sizes):
            raise ValueError(f"shard_id={shard_id!r} must be an int in [0, {len(self.output_sizes)})")
        local = self.local_sizes[shard_id]
        copy_shard(
            param,
            loaded,
            dim=0,
            full_size=self.output_sizes[shard_id],
            src_start=self.tp_rank * local,
            dst_start=sum(self.local_sizes[:shard_id]),
            size=local,
        )


class QKVParallelLinear(_ParallelLinear):
    """The fused q, k, v projections; the local output is ``[q_local | k_local | v_local]``.

    Query heads split across ranks. KV heads split too when there are at least ``tp_size`` of them;
    otherwise each KV head is replicated on ``tp_size // num_kv_heads`` consecutive ranks.
    """

    def __init__(
        self,
        hidden_size: int,
        head_dim: int,
        num_heads: int,
        num_kv_heads: int,
        bias: bool = False,
        *,
        tp_size: int | None = None,
        tp_rank: int | None = None,
    ) -> None:
        tp = get_tp_size() if tp_size is None else tp_size
        self.head_dim = head_dim
        self.total_num_heads = num_heads
        self.total_num_kv_heads = num_kv_heads
        self.num_heads = divide(num_heads, tp, "num_attention_heads")  # local
        if num_kv_heads >= tp:
            self.num_kv_heads = divide(num_kv_heads, tp, "num_key_value_heads")
            self.num_kv_replicas = 1
        else:
            self.num_kv_heads = 1
            self.num_kv_replicas = divide(tp, num_kv_heads, "tp_size over num_key_value_heads")
        self.q_size = self.num_heads * head_dim  # local sizes
        self.kv_size = self.num_kv_heads * head_dim
        super().__init__(hidden_size, self.q_size + 2 * self.kv_size, bias, tp, tp_rank)
        self.input_size = hidden_size

    def fused_rotary(
        self,
        x: torch.Tensor | PendingNorm,
        positions: torch.Tensor,
        rotary: RotaryEmbedding,
        kv_destination: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | None:
        """This layer's output with ``rotary`` applied to its q and k heads (``rotary(positions, q, k)``)
        in one kernel, where one serves: the skinny linear's rotated launch, for the few rows of a CUDA
        decode step. Else None. ``kv_destination``: (KV cache, slot mapping) where the same launch stores
        the k (rotated) and v heads (``Attention.kv_destination``)."""
        if not input_rows(x).is_cuda or rotary.head_dim != self.head_dim or positions.stride(0) != 1:
            return None
        skinny = _skinny()
        cache, slots = kv_destination if kv_destination is not None else (None, None)
        rope = skinny.SkinnyRope(
            positions,
            rotary.cos_cache,
            rotary.sin_cache,
            self.head_dim,
            self.q_size + self.kv_size,
            cache,
            slots,
        )
        return skinny.maybe_skinny_rotary_linear(x, self.weight, self.bias, rope)  # type: ignore[no-any-return]

    def weight_loader(
        self, param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None
    ) -> None:
        if shard_id == "q":
            full, size, dst_start = self.total_num_heads * self.head_dim, self.q_size, 0
            src_start = self.tp_rank * self.q_size
        elif shard_id in ("k", "v"):
            full, size = self.total_num_kv_heads * self.head_dim, self.kv_size
            dst_start = self.q_size if shard_id == "k" else self.q_size + self.kv_size
            src_start = (self.tp_rank // self.num_kv_replicas) * self.kv_size
        else:
            raise ValueError(f"shard_id={shard_id!r} must be 'q', 'k' or 'v'")
        copy_shard(param, loaded, dim=0, full_size=full, src_start=src_start, dst_start=dst_start, size=size)


class RowParallelLinear(_ParallelLinear):
    """``y = x W^T + b`` with W's columns (input features) split across ranks; partial sums all-reduced.

    The input arrives already sharded (the output of a column-parallel layer). The bias is added on rank
    0 only, so it counts once in the sum. ``reduce_results=False`` leaves the partial sum to the caller.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        bias: bool = False,
        *,
        reduce_results: bool = True,
        tp_size: int | None = None,
        tp_rank: int | None = None,
    ) -> None:
        tp = get_tp_size() if tp_size is None else tp_size
        super().__init__(divide(input_size, tp, "input_size"), output_size, bias, tp, tp_rank)
        self.input_size = input_size
        self.output_size = output_size
        self.reduce_results = reduce_results

    def weight_loader(
        self, param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None
    ) -> None:
        if shard_id is not None:
            raise ValueError(f"shard_id={shard_id!r} given for an unfused row-parallel layer")
        if param.dim() == 1:  # the bias is not split
            copy_shard(
                param,
                loaded,
                dim=0,
                full_size=self.output_size,
                src_start=0,
                dst_start=0,
                size=self.output_size,
            )
            return
        local = param.shape[1]
        copy_shard(
            param,
            loaded,
            dim=1,
            full_size=self.input_size,
            src_start=self.tp_rank * local,
            dst_start=0,
            size=local,
        )

    def forward(self, x: torch.Tensor | PendingNorm) -> torch.Tensor:
        bias = self.bias if self.tp_rank == 0 else None
        out = _linear(x, self.weight, bias)
        if self.reduce_results and self.tp_size > 1:
            all_reduce_sum(out)
        return out

    def add_and_norm(
        self, x: torch.Tensor, residual: torch.Tensor, norm: RMSNorm
    ) -> tuple[torch.Tensor | PendingNorm, torch.Tensor]:
        """``norm(self(x), residual)``: this layer's output added to the residual stream, and the sum normed
        for the next linear layer, whose input it is. For the few rows of a CUDA decode step one launch
        does it all but the norm's row scale, which it hands over to that linear (``PendingNorm``, which
        every linear layer takes as input). Returns that and the sum, the new residual stream (on CUDA
        written into ``residual``)."""
        if self.tp_size == 1 and x.is_cuda:
            pending = _skinny().maybe_skinny_linear_add_norm(
                x, self.weight, self.bias, residual, norm.weight, norm.eps
            )
            if pending is not None:
                return pending, residual
        return norm(self(x), residual)
