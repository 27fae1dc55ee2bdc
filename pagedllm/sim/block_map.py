"""A picture-ready snapshot of the pool: who holds each physical block, and how full it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pagedllm.core.scheduler import Scheduler
from pagedllm.core.scheduler_output import SchedulerOutput


@dataclass(frozen=True, slots=True)
class BlockMap:
    step: int
    block_size: int
    owner: list[int]  # per physical block: the lowest index of a request holding it, -1 when free
    num_holders: list[int]  # requests holding it (> 1: shared)
    num_filled: list[int]  # slots holding tokens (0 for a reserved block no token has reached)

    @property
    def num_blocks(self) -> int:
        return len(self.owner)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "block_size": self.block_size,
            "owner": self.owner,
            "num_holders": self.num_holders,
            "num_filled": self.num_filled,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BlockMap:
        return cls(
            d["step"], d["block_size"], list(d["owner"]), list(d["num_holders"]), list(d["num_filled"])
        )


def snapshot_block_map(
    scheduler: Scheduler, scheduler_output: SchedulerOutput, request_index: Mapping[str, int], step: int
) -> BlockMap:
    """The pool as the step's attention sees it (the same point ``KVStatsRecorder.record`` samples)."""
    kv = scheduler.kv
    block_size = kv.block_size
    owner = [-1] * kv.num_blocks
    num_holders = [0] * kv.num_blocks
    num_filled = [0] * kv.num_blocks
    new_tokens = {item.request_id: item.num_tokens for item in scheduler_output.scheduled}
    for request in scheduler.running:
        table = kv.block_tables.get(request.request_id)
        if table is None:
            continue
        index = request_index.get(request.request_id, -1)
        num_tokens = request.num_computed_tokens + new_tokens.get(request.request_id, 0)
        for position, block in enumerate(table):
            block_id = block.block_id
            fill = max(0, min(block_size, num_tokens - position * block_size))
            if num_holders[block_id] == 0 or index < owner[block_id]:
                owner[block_id] = index
            num_holders[block_id] += 1
            num_filled[block_id] = max(num_filled[block_id], fill)
    return BlockMap(step, block_size, owner, num_holders, num_filled)
