"""Runs one scheduled step on the device: inputs, forward pass through the paged cache, sampling."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.context import forward_context
from pagedllm.core.scheduler_output import SchedulerOutput
from pagedllm.model.config import ModelArchConfig
from pagedllm.sampling_params import SamplingParams
from pagedllm.worker.block_ops import copy_blocks, swap_blocks
from pagedllm.worker.cuda_graphs import DecodeGraphs
from pagedllm.worker.model_inputs import build_model_inputs
from pagedllm.worker.sampler import Sampler
from pagedllm.worker.sampling_batch import SamplingBatch


@dataclass(slots=True)
class ModelOutput:
    sampled_token_ids: dict[str, int] = field(default_factory=dict)
    # request id -> [(token_id, logprob, rank)]: the sampled token first, then the top-k.
    logprobs: dict[str, list[tuple[int, float, int]]] = field(default_factory=dict)


@dataclass(slots=True)
class _RequestState:
    """What the worker keeps per request between steps: sampling inputs that outlive one step."""

    prompt_token_ids: list[int]
    params: SamplingParams
    generator: torch.Generator | None
    output_token_ids: list[int] = field(default_factory=list)


class ModelRunner:
    def __init__(
        self,
        model: nn.Module,
        arch: ModelArchConfig,
        kv_caches: list[torch.Tensor],
        block_size: int,
        backend: AttentionBackend,
        device: torch.device,
        eos_token_id: int | None,
        seed: int,
        *,
        cuda_graph_max_batch_size: int = 0,  # 0: eager only
        max_model_len: int = 0,
        cpu_kv_caches: list[torch.Tensor] | None = None,  # the swap space, one tensor per layer
    ) -> None:
        self.model = model
        self.arch = arch
        self.kv_caches = kv_caches
        self.cpu_kv_caches = cpu_kv_caches or []
        self.block_size = block_size
        self.backend = backend
        self.device = device
        self.eos_token_id = eos_token_id
        self.sampler = Sampler()
        # Engine-wide randomness for requests without a seed: whole runs stay reproducible.
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self._states: dict[str, _RequestState] = {}
        # The last step's sampled request ids, their states and sampling batch: reused while the same
        # requests are sampled in the same order and nothing in the batch changes from step to step.
        self._last_sampled: tuple[str, ...] = ()
        self._last_states: list[_RequestState] = []
        self._last_batch: SamplingBatch | None = None
        self.graphs: DecodeGraphs | None = None
        if cuda_graph_max_batch_size > 0 and device.type == "cuda":
            self.graphs = DecodeGraphs(
                model, kv_caches, backend, device, block_size, cuda_graph_max_batch_size, max_model_len
            )
            self.graphs.capture()

    def graph_batch_sizes(self) -> list[int]:
        return [] if self.graphs is None else list(self.graphs.batch_sizes)

    def _update_states(self, sched: SchedulerOutput) -> None:
        if sched.finished_request_ids or sched.new_requests:
            # NOTE: an id can come back as a new request once its old one is gone: a cached batch
            # would sample it with the old request's parameters and generator.
            self._last_batch = None
        for request_id in sched.finished_request_ids:
            self._states.pop(request_id, None)
        for new in sched.new_requests:
            params: SamplingParams = new.sampling_params
            generator = None
            if params.seed is not None:
                generator = torch.Generator(device=self.device).manual_seed(params.seed)
            self._states[new.request_id] = _RequestState(list(new.prompt_token_ids), params, generator)

    @torch.inference_mode()
    def execute(self, sched: SchedulerOutput) -> ModelOutput:
        self._update_states(sched)
        # NOTE: before the empty check (a step may only swap out) and in this order: out first (a block
        # it frees may be a swap-in's destination), then in, then the copy-on-write copies.
        if sched.blocks_to_swap_out:
            swap_blocks(self.kv_caches, self.cpu_kv_caches, sched.blocks_to_swap_out)
        if sched.blocks_to_swap_in:
            swap_blocks(self.cpu_kv_caches, self.kv_caches, sched.blocks_to_swap_in)
        if sched.block_copies:
            copy_blocks(self.kv_caches, sched.block_copies)
        if sched.is_empty:
            return ModelOutput()
        scheduled = sched.scheduled
        sampled_items = [s for s in scheduled if s.needs_sample]
        if self.graphs is not None and self.graphs.can_run(scheduled):
            logits = self.graphs.run(sched.scheduled)  # [num_seqs, vocab]: every row of the step
            if len(sampled_items) < len(sched.scheduled):
                rows = [i for i, s in enumerate(sched.scheduled) if s.needs_sample]
                logits = logits[torch.tensor(rows, device=logits.device)]
        else:
            inputs = build_model_inputs(sched.scheduled, self.block_size, self.device)
            with forward_context(inputs.attn_metadata, self.kv_caches, self.backend):
                hidden = self.model(inputs.input_ids, inputs.positions)  # [num_tokens, hidden]
            if not sampled_items:
                return ModelOutput()
            logits = self.model.compute_logits(hidden[inputs.logits_indices])  # [num_sampled, vocab]
        if not sampled_items:
            return ModelOutput()
        # A parallel-sampling parent's last logits row is sampled once more for each child it forks.
        to_sample = tuple(s.request_id for s in sampled_items)
        if any(s.fork_request_ids for s in sampled_items):
            to_sample = tuple(rid for s in sampled_items for rid in (s.request_id, *s.fork_request_ids))
            rows = [row for row, s in enumerate(sampled_items) for _ in range(1 + len(s.fork_request_ids))]
            logits = logits[torch.tensor(rows, device=logits.device)]
        states, batch = self._sampling_batch(to_sample, logits.shape[-1])
        sampled = self.sampler(logits, batch, self.generator)
        sampled_ids = sampled.sampled_token_ids
        for state, token_id in zip(states, sampled_ids, strict=True):
            state.output_token_ids.append(token_id)
        out = ModelOutput(sampled_token_ids=dict(zip(to_sample, sampled_ids, strict=True)))
        if batch.max_num_logprobs is not None:
            for request_id, logprobs in zip(to_sample, sampled.logprobs, strict=True):
                if logprobs is not None:
                    out.logprobs[request_id] = logprobs
        return out

    def _sampling_batch(
        self, to_sample: tuple[str, ...], vocab_size: int
    ) -> tuple[list[_RequestState], SamplingBatch]:
        """The sampled requests' states and sampling tensors, reusing the last step's when they cannot
        differ (issue 6: building them costs ~1 us per request per step on the host).

        NOTE: a batch depends on the step only through penalties (the output history) and the tokens
        blocked until ``min_tokens``; a batch without either stays valid for the same requests in the
        same order (outputs only grow, so no token becomes blocked again). Generators are per request
        objects, advanced in place.
        """
        last = self._last_batch
        if (
            last is not None
            and last.penalties is None
            and last.blocked_index is None
            and last.vocab_size == vocab_size
            and to_sample == self._last_sampled
        ):
            return self._last_states, last
        states = [self._states[request_id] for request_id in to_sample]
        batch = SamplingBatch.build(
            params=[s.params for s in states],
            prompt_token_ids=[s.prompt_token_ids for s in states],
            output_token_ids=[s.output_token_ids for s in states],
            generators=[s.generator for s in states],
            eos_token_id=self.eos_token_id,
            vocab_size=vocab_size,
            device=self.device,
        )
        self._last_sampled, self._last_states, self._last_batch = to_sample, states, batch
        return states, batch
