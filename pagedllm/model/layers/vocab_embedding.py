"""Token embedding and LM head, vocabulary-parallel (rows split across tensor-parallel ranks).

Each rank owns a contiguous slice of ``ceil(vocab_size / tp_size)`` rows; the last slice is padded. The
embedding zeroes the tokens another rank owns and all-reduces; the LM head all-gathers its logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pagedllm.model.layers.tp import all_gather_last_dim, all_reduce_sum, get_tp_rank, get_tp_size
from pagedllm.model.layers.weight_loader import ShardId, copy_shard, set_weight_loader


class _VocabShard(nn.Module):
    def __init__(
        self, num_embeddings: int, embedding_dim: int, tp_size: int | None, tp_rank: int | None
    ) -> None:
        super().__init__()
        self.tp_size = get_tp_size() if tp_size is None else tp_size
        self.tp_rank = get_tp_rank() if tp_rank is None else tp_rank
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"num_embeddings={num_embeddings} and embedding_dim={embedding_dim} must be > 0")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.rows_per_rank = -(-num_embeddings // self.tp_size)
        self.vocab_start = self.tp_rank * self.rows_per_rank
        self.vocab_end = min(self.vocab_start + self.rows_per_rank, num_embeddings)

    def weight_loader(
        self, param: nn.Parameter, loaded: torch.Tensor, shard_id: ShardId | None = None
    ) -> None:
        if shard_id is not None:
            raise ValueError(f"shard_id={shard_id!r} given for a vocabulary-parallel layer")
        copy_shard(
            param,
            loaded,
            dim=0,
            full_size=self.num_embeddings,
            src_start=self.vocab_start,
            dst_start=0,
            size=self.vocab_end - self.vocab_start,
        )


class VocabParallelEmbedding(_VocabShard):
    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        tp_size: int | None = None,
        tp_rank: int | None = None,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, tp_size, tp_rank)
        # NOTE: zero-filled so the padding rows of the last shard never contribute garbage.
        self.weight = nn.Parameter(torch.zeros(self.rows_per_rank, embedding_dim))
        set_weight_loader(self.weight, self.weight_loader)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:  # [num_tokens] -> [num_tokens, dim]
        if self.tp_size == 1:
            return F.embedding(input_ids, self.weight)
        is_local = (input_ids >= self.vocab_start) & (input_ids < self.vocab_end)
        local_ids = torch.where(is_local, input_ids - self.vocab_start, 0)
        out = F.embedding(local_ids, self.weight).masked_fill(~is_local[:, None], 0)
        return all_reduce_sum(out)


class ParallelLMHead(_VocabShard):
    """Projects hidden states to vocabulary logits; ``tied_to`` shares the embedding's weight."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        tied_to: VocabParallelEmbedding | None = None,
        tp_size: int | None = None,
        tp_rank: int | None = None,
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, tp_size, tp_rank)
        if tied_to is not None:
            if (tied_to.num_embeddings, tied_to.embedding_dim) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"cannot tie an LM head of {(num_embeddings, embedding_dim)} to an embedding of "
                    f"{(tied_to.num_embeddings, tied_to.embedding_dim)}"
                )
            self.weight = tied_to.weight  # the same Parameter: loaded once, under the embedding's name
        else:
            self.weight = nn.Parameter(torch.zeros(self.rows_per_rank, embedding_dim))
            set_weight_loader(self.weight, self.weight_loader)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [num_tokens, dim] -> [num_tokens, vocab]
        logits = F.linear(hidden, self.weight)  # [num_tokens, rows_per_rank]
        if self.tp_size == 1:
            return logits
        return all_gather_last_dim(logits)[:, : self.num_embeddings]
