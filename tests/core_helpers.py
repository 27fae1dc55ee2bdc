"""Builders for core/ tests: requests and a fake executor that turns a schedule into sampled tokens."""

from __future__ import annotations

import itertools

from pagedllm.core import KVCacheManager, Request, Scheduler, SchedulerConfig, StopCriteria

_ids = itertools.count()


def make_request(num_prompt_tokens: int, max_tokens: int = 8, **stop_kwargs: object) -> Request:
    request_id = f"req-{next(_ids)}"
    return Request(
        request_id=request_id,
        prompt_token_ids=[(7 * i + 3) % 1000 + 10 for i in range(num_prompt_tokens)],
        stop=StopCriteria(max_tokens=max_tokens, **stop_kwargs),  # type: ignore[arg-type]
    )


def make_scheduler(
    num_blocks: int = 64,
    block_size: int = 4,
    max_num_seqs: int = 8,
    max_num_batched_tokens: int = 64,
    max_model_len: int = 64,
    enable_chunked_prefill: bool = True,
) -> Scheduler:
    config = SchedulerConfig(
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        max_model_len=max_model_len,
        enable_chunked_prefill=enable_chunked_prefill,
    )
    return Scheduler(config, KVCacheManager(num_blocks, block_size))


def run_step(scheduler: Scheduler, token: int = 500) -> list[Request]:
    """One step with a fake model that samples ``token`` for every sequence that needs a sample."""
    out = scheduler.schedule()
    sampled = {item.request_id: token for item in out.scheduled if item.needs_sample}
    return scheduler.update_from_output(out, sampled)
