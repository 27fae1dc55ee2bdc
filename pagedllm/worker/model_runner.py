"""Runs one scheduled step on the device: inputs, forward pass through the paged cache, sampling."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import torch
from torch import nn

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.context import forward_context
from pagedllm.core.scheduler_output import ScheduledRequest, SchedulerOutput
from pagedllm.model.config import ModelArchConfig
from pagedllm.sampling_params import SamplingParams
from pagedllm.worker.block_ops import copy_blocks, swap_blocks
from pagedllm.worker.cuda_graphs import DecodeGraphs
from pagedllm.worker.kernel_warmup import warm_up_attention_variants
from pagedllm.worker.model_inputs import PreviousTokens, build_model_inputs, write_previous_tokens
from pagedllm.worker.piecewise_graphs import PiecewiseGraphs
from pagedllm.worker.sampler import Sampler, greedy_argmax
from pagedllm.worker.sampling_batch import SamplingBatch


@dataclass(slots=True)
class ModelOutput:
    sampled_token_ids: dict[str, int] = field(default_factory=dict)
    # request id -> [(token_id, logprob, rank)]: the sampled token first, then the top-k.
    logprobs: dict[str, list[tuple[int, float, int]]] = field(default_factory=dict)


@dataclass(slots=True)
class InFlightStep:
    """A launched step: what ``ModelRunner.collect`` needs to hand its tokens to the host."""

    request_ids: tuple[str, ...]  # the sampled sequences, row by row
    states: list[_RequestState]
    batch: SamplingBatch
    sampled: torch.Tensor  # [num_sampled] int64 on the device
    raw_logprobs: torch.Tensor | None  # [num_sampled, vocab] float32, when logprobs are asked for
    host_ids: torch.Tensor | None  # [num_sampled] int64 pinned: the read-back in progress (CUDA)
    done: torch.cuda.Event | None  # recorded after the read-back (CUDA)


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
        eos_token_ids: Collection[int],  # every id that ends a request unless it ignores EOS
        seed: int,
        *,
        cuda_graph_max_batch_size: int = 0,  # 0: pure decodes run eagerly
        piecewise_graph_max_tokens: int = 0,  # 0: other steps run eagerly
        max_model_len: int = 0,
        max_num_seqs: int = 0,  # > 0 on CUDA: compile every attention-kernel variant first
        cpu_kv_caches: list[torch.Tensor] | None = None,  # the swap space, one tensor per layer
    ) -> None:
        self.model = model
        self.arch = arch
        self.kv_caches = kv_caches
        self.cpu_kv_caches = cpu_kv_caches or []
        self.block_size = block_size
        self.backend = backend
        self.device = device
        self.eos_token_ids = eos_token_ids
        self.sampler = Sampler()
        # Engine-wide randomness for requests without a seed: whole runs stay reproducible.
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self._states: dict[str, _RequestState] = {}
        # The last step's sampled request ids, their states and sampling batch: reused while the same
        # requests are sampled in the same order and nothing in the batch changes from step to step.
        self._last_sampled: tuple[str, ...] = ()
        self._last_states: list[_RequestState] = []
        self._last_batch: SamplingBatch | None = None
        if max_num_seqs > 0 and device.type == "cuda":
            warm_up_attention_variants(
                model, kv_caches, backend, device, block_size, max_num_seqs, max_model_len
            )
            # Greedy sampling's argmax kernels compile now, not in the first request's step: on the
            # logits as the model gives them, and upcast (batches that also sample or penalize).
            for dtype in {kv_caches[0].dtype if kv_caches else torch.float32, torch.float32}:
                greedy_argmax(torch.zeros(1, arch.vocab_size, dtype=dtype, device=device))
        self.graphs: DecodeGraphs | None = None
        if cuda_graph_max_batch_size > 0 and device.type == "cuda":
            self.graphs = DecodeGraphs(
                model, kv_caches, backend, device, block_size, cuda_graph_max_batch_size, max_model_len
            )
            self.graphs.capture()
        self.piecewise: PiecewiseGraphs | None = None
        if piecewise_graph_max_tokens > 0 and device.type == "cuda":
            self.piecewise = PiecewiseGraphs(
                model, kv_caches, backend, device, block_size, arch.hidden_size, piecewise_graph_max_tokens
            )
            self.piecewise.capture()

    def graph_batch_sizes(self) -> list[int]:
        return [] if self.graphs is None else list(self.graphs.batch_sizes)

    def _update_states(self, sched: SchedulerOutput) -> None:
        if sched.new_requests:
            # NOTE: an id can come back as a new request once its old one is gone: a cached batch
            # would sample it with the old request's parameters and generator. (A request that only
            # finished changes the sampled ids, so the cache misses by itself.)
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
        """Run one step and wait for its sampled tokens."""
        step = self.launch(sched)
        return ModelOutput() if step is None else self.collect(step)

    @torch.inference_mode()
    def launch(self, sched: SchedulerOutput, previous: InFlightStep | None = None) -> InFlightStep | None:
        """Start one step on the device and return without waiting for it (on CUDA); ``collect`` gives
        its tokens. None when the step samples nothing (its work, if any, is done or enqueued).

        ``previous``: the step still in flight whose sampled ids feed this step's rows marked
        ``token_from_previous_step`` (async scheduling); read on the device, never on the host.
        """
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
            return None
        scheduled = sched.scheduled
        sampled_items = [s for s in scheduled if s.needs_sample]
        previous_tokens = self._previous_tokens(scheduled, previous)
        # Whether ``logits`` are the decode graph's own, row for row (its captured argmax applies).
        graph_rows = False
        if self.graphs is not None and self.graphs.can_run(scheduled):
            logits = self.graphs.run(scheduled, previous_tokens)  # [num_seqs, vocab]: every row of the step
            graph_rows = len(sampled_items) == len(scheduled)
            if not graph_rows:
                rows = [i for i, s in enumerate(scheduled) if s.needs_sample]
                logits = logits[torch.tensor(rows, device=logits.device)]
        else:
            inputs = build_model_inputs(scheduled, self.block_size, self.device)
            if previous_tokens is not None:
                write_previous_tokens(inputs.input_ids, previous_tokens)
            if self.piecewise is not None and self.piecewise.can_run(inputs.input_ids.shape[0]):
                hidden = self.piecewise.run(inputs.input_ids, inputs.positions, inputs.attn_metadata)
            else:
                with forward_context(inputs.attn_metadata, self.kv_caches, self.backend):
                    hidden = self.model(inputs.input_ids, inputs.positions)  # [num_tokens, hidden]
            if not sampled_items:
                return None
            logits = self.model.compute_logits(hidden[inputs.logits_indices])  # [num_sampled, vocab]
        if not sampled_items:
            return None
        # A parallel-sampling parent's last logits row is sampled once more for each child it forks.
        to_sample = tuple(s.request_id for s in sampled_items)
        if any(s.fork_request_ids for s in sampled_items):
            to_sample = tuple(rid for s in sampled_items for rid in (s.request_id, *s.fork_request_ids))
            rows = [row for row, s in enumerate(sampled_items) for _ in range(1 + len(s.fork_request_ids))]
            logits = logits[torch.tensor(rows, device=logits.device)]
            graph_rows = False
        states, batch = self._sampling_batch(to_sample, logits.shape[-1])
        if graph_rows and batch.is_plain_greedy:
            assert self.graphs is not None
            sampled, raw_logprobs = self.graphs.argmax_of_last_run(len(to_sample)), None
        else:
            sampled, raw_logprobs = self.sampler.sample(logits, batch, self.generator)
        host_ids = None
        done = None
        if sampled.device.type == "cuda":
            # The read-back starts now and is waited for in collect: the host goes on meanwhile.
            host_ids = torch.empty(sampled.shape, dtype=sampled.dtype, pin_memory=True)
            host_ids.copy_(sampled, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
        return InFlightStep(to_sample, states, batch, sampled, raw_logprobs, host_ids, done)

    def _previous_tokens(
        self, scheduled: list[ScheduledRequest], previous: InFlightStep | None
    ) -> PreviousTokens | None:
        """The rows whose input token ``previous`` samples, and those tokens on the device."""
        if previous is None:
            return None
        previous_ids = previous.request_ids
        if len(scheduled) == len(previous_ids) and all(
            s.token_from_previous_step and s.request_id == rid
            for s, rid in zip(scheduled, previous_ids, strict=True)
        ):
            # The common case: every row, the same sequences in the same order; nothing to gather.
            return None, previous.sampled
        # A step scheduled ahead with admissions or prefill chunks beside its decodes: gather by row,
        # write by token (a row's first token follows the rows before it).
        row_of = {rid: row for row, rid in enumerate(previous_ids)}
        targets: list[int] = []
        sources: list[int] = []
        token_index = 0
        for s in scheduled:
            if s.token_from_previous_step:
                targets.append(token_index)
                sources.append(row_of[s.request_id])
            token_index += len(s.token_ids)
        if not targets:
            return None
        source = previous.sampled.index_select(0, self._index_tensor(sources))
        return self._index_tensor(targets), source

    def _index_tensor(self, values: list[int]) -> torch.Tensor:  # [len(values)] int64 on the device
        host = torch.tensor(values, dtype=torch.int64)
        if self.device.type != "cuda":
            return host
        # NOTE: pinned, so the copy never waits for the work in flight (one from pageable memory may).
        return host.pin_memory().to(self.device, non_blocking=True)

    def collect(self, step: InFlightStep) -> ModelOutput:
        """Wait for a launched step's sampled tokens and hand them (and logprobs) to the host."""
        if step.done is not None:
            step.done.synchronize()
        sampled = self.sampler.to_host(step.sampled, step.raw_logprobs, step.batch, step.host_ids)
        sampled_ids = sampled.sampled_token_ids
        for state, token_id in zip(step.states, sampled_ids, strict=True):
            state.output_token_ids.append(token_id)
        out = ModelOutput(sampled_token_ids=dict(zip(step.request_ids, sampled_ids, strict=True)))
        if step.batch.max_num_logprobs is not None:
            for request_id, logprobs in zip(step.request_ids, sampled.logprobs, strict=True):
                if logprobs is not None:
                    out.logprobs[request_id] = logprobs
        return out

    def can_feed_next_step(self, step: InFlightStep) -> bool:
        """Whether a step may be scheduled ahead of ``step``'s tokens reaching the host.

        NOTE: penalties read the output history and ``min_tokens`` blocks stop tokens by the output
        count, both one token behind while ``step`` is in flight; a batch with neither samples the next
        step exactly as if it had waited.
        """
        return step.batch.penalties is None and step.batch.blocked_index is None

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
            eos_token_ids=self.eos_token_ids,
            vocab_size=vocab_size,
            device=self.device,
        )
        self._last_sampled, self._last_states, self._last_batch = to_sample, states, batch
        return states, batch
