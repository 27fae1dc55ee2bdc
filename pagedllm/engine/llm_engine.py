"""The request lifecycle: add, step, abort. Ties the scheduler (core/) to the model runner (worker/)."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from pagedllm.attention.backend import AttentionBackend
from pagedllm.attention.reference import ReferenceAttentionBackend
from pagedllm.beam_search import BeamSearchParams
from pagedllm.config import DEFAULT_CPU_KV_CACHE_BYTES, EngineConfig
from pagedllm.core.kv_cache_manager import cdiv
from pagedllm.core.kv_policy import make_kv_cache_manager
from pagedllm.core.kv_stats import KVStatsRecorder
from pagedllm.core.request import Request, RequestStatus, StopCriteria
from pagedllm.core.scheduler import Scheduler, SchedulerConfig
from pagedllm.core.scheduler_output import SchedulerOutput
from pagedllm.engine.beam_search import BeamSearchRequest, BeamSearchState, BeamStep
from pagedllm.engine.core_messages import CoreStats, RequestDelta
from pagedllm.engine.input_processor import InputProcessor, PromptInput
from pagedllm.engine.output_processor import RequestTracker, SequenceTracker
from pagedllm.engine.step_trace import StepTrace
from pagedllm.model.default_model import default_model_path
from pagedllm.model.loader.model_loader import load_model
from pagedllm.outputs import RequestOutput
from pagedllm.sampling_params import MAX_SEED, SamplingParams
from pagedllm.tokenizer.detokenizer import IncrementalDetokenizer
from pagedllm.tokenizer.tokenizer import Tokenizer, load_tokenizer
from pagedllm.worker.kv_cache import allocate_kv_caches, kv_cache_bytes_per_block, num_blocks_for_budget
from pagedllm.worker.memory_profile import profile_memory
from pagedllm.worker.model_runner import InFlightStep, ModelOutput, ModelRunner
from pagedllm.worker.piecewise_graphs import DEFAULT_MAX_TOKENS as DEFAULT_PIECEWISE_MAX_TOKENS

logger = logging.getLogger(__name__)

# Async scheduling hashes the blocks of the next step's admissions while the step before it runs
# (``Scheduler.prepare_admissions``); "0": ``schedule`` hashes them after it (A/B runs).
HASH_AHEAD = os.environ.get("PAGEDLLM_HASH_AHEAD", "1") != "0"
# Async scheduling admits waiting requests and continues prefill chunks in the steps it schedules
# ahead (``Scheduler.schedule_ahead``); "0": such steps wait for the step in flight (A/B runs).
ADMIT_AHEAD = os.environ.get("PAGEDLLM_ADMIT_AHEAD", "1") != "0"

# What a step hands back: the requests that may have an output (finished ones already forgotten by
# the engine), and the outputs of beam searches that finished.
StepResult = tuple[list[RequestTracker], list[RequestOutput]]


def freeze_startup_heap() -> None:
    """Collect once, then take every object alive out of the garbage collector's sight (``gc.freeze``).

    The KV pool alone is one Python object per block (137,218 for Llama-3.2-1B on an H100), and with
    torch's and transformers' objects a full collection traversed them all for ~130 ms (a 134 ms pause
    in the first step of a 1 s Llama-3.2-1B run on an H100; 31-161 ms of GC in such runs). Objects that
    die by reference counting still go, frozen or not (the engine's do, and ``FreeBlockQueue`` unlinks its
    blocks' cycles when it goes); only cyclic garbage among the frozen objects would stay. vLLM freezes
    its start-up heap the same way."""
    gc.collect()
    gc.freeze()


class LLMEngine:
    """Single-process engine. ``step()`` runs one scheduled batch and returns the outputs it advanced."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.device = config.torch_device()
        self.dtype = config.torch_dtype(self.device)
        source = Path(config.model) if config.model is not None else default_model_path()
        self.model_name = config.model if config.model is not None else source.stem.split(".")[0]
        self.model, self.arch = load_model(
            source, dtype=self.dtype, device=self.device, load_format=config.load_format, seed=config.seed
        )
        self.tokenizer: Tokenizer | None = None if config.load_format == "dummy" else load_tokenizer(source)
        self.attention_backend = self._attention_backend()

        max_positions = self.arch.max_position_embeddings
        if config.max_model_len is not None and config.max_model_len > max_positions:
            # The rotary tables end there: a longer sequence would fail inside a step (or, in a CUDA
            # kernel, read past the table), and the model never saw such positions anyway.
            raise ValueError(
                f"max_model_len={config.max_model_len} is more than the model's context "
                f"(max_position_embeddings={max_positions}); lower max_model_len"
            )
        num_blocks = self._num_kv_blocks()
        capacity = num_blocks * config.block_size
        max_model_len = config.max_model_len or min(max_positions, capacity)
        if max_model_len > capacity:
            raise ValueError(
                f"max_model_len={max_model_len} does not fit in the KV cache: {num_blocks} blocks of "
                f"{config.block_size} tokens hold {capacity} tokens; raise kv_cache_memory_bytes (or "
                "gpu_memory_utilization), or lower max_model_len"
            )
        self.max_model_len = max_model_len
        self.inputs = InputProcessor(
            self.tokenizer, self.arch.vocab_size, max_model_len, config.max_num_seqs, config.kv_policy
        )
        num_cpu_blocks = self._num_swap_blocks()
        self.scheduler = Scheduler(
            SchedulerConfig(
                max_num_seqs=config.max_num_seqs,
                max_num_batched_tokens=config.batched_token_budget(self.device, max_model_len),
                max_model_len=max_model_len,
                enable_chunked_prefill=config.enable_chunked_prefill,
                preemption_mode=config.preemption_mode if num_cpu_blocks else "recompute",
                swap_threshold_tokens=config.swap_threshold_tokens,
            ),
            make_kv_cache_manager(
                config.kv_policy,
                num_blocks,
                config.block_size,
                max_model_len,
                # Reservations are private by construction: prefix caching is a paged-policy feature.
                enable_prefix_caching=config.enable_prefix_caching and config.kv_policy == "paged",
                num_cpu_blocks=num_cpu_blocks,
            ),
        )
        self.scheduler.admit_ahead = ADMIT_AHEAD
        # Per-step samples of the KV pool (LLM(record_kv_stats=True)); None costs nothing per step.
        self.kv_stats: KVStatsRecorder | None = (
            KVStatsRecorder(self.scheduler) if config.record_kv_stats else None
        )
        self.kv_caches = allocate_kv_caches(self.arch, num_blocks, config.block_size, self.dtype, self.device)
        # The swap space: host memory, pinned beside a CUDA cache so each swap is one DMA per layer.
        cpu_kv_caches = (
            allocate_kv_caches(
                self.arch,
                num_cpu_blocks,
                config.block_size,
                self.dtype,
                torch.device("cpu"),
                pin_memory=self.device.type == "cuda",
            )
            if num_cpu_blocks
            else None
        )
        self.eos_token_id = self._eos_token_id()
        self.runner = ModelRunner(
            self.model,
            self.arch,
            self.kv_caches,
            config.block_size,
            self.attention_backend,
            self.device,
            self._all_eos_token_ids(),
            config.seed,
            # Graphs replay fixed launches: only the Triton backend keeps its host work out of the step
            # (the reference backend's K/V write syncs to count the slots it stores).
            cuda_graph_max_batch_size=0 if self._eager_only() else config.max_num_seqs,
            piecewise_graph_max_tokens=self._piecewise_graph_max_tokens(
                self.scheduler.config.max_num_batched_tokens
            ),
            max_model_len=max_model_len,
            max_num_seqs=config.max_num_seqs,
            cpu_kv_caches=cpu_kv_caches,
        )
        self._trackers: dict[str, RequestTracker] = {}  # by user request id
        self._sequences: dict[str, tuple[RequestTracker, SequenceTracker]] = {}  # by sequence id
        self._beam_searches: dict[str, BeamSearchRequest] = {}  # by user request id
        self._beam_sequences: dict[str, BeamSearchRequest] = {}  # by live beam's sequence id
        self._request_counter = itertools.count()
        self.async_scheduling = config.uses_async_scheduling(self.device)
        # Async scheduling: the step launched on the device whose tokens the host has not processed.
        self._in_flight: tuple[SchedulerOutput, InFlightStep] | None = None
        self.num_steps_scheduled_ahead = 0  # steps launched before the previous one's tokens were read
        self._step_trace = StepTrace.from_env()
        self._last_launched: tuple[SchedulerOutput, bool] | None = None  # (step, ahead), for the trace
        logger.info(
            "KV cache: %d blocks x %d tokens (%.1f MiB), max_model_len %d: max concurrency %.1fx",
            num_blocks,
            config.block_size,
            num_blocks * kv_cache_bytes_per_block(self.arch, config.block_size, self.dtype) / 2**20,
            max_model_len,
            capacity / max_model_len,
        )
        if self.device.type == "cuda":
            freeze_startup_heap()

    # -- set-up ------------------------------------------------------------------------------------

    def _eager_only(self) -> bool:
        return self.config.enforce_eager or self.attention_backend.name != "triton"

    def _piecewise_graph_max_tokens(self, max_num_batched_tokens: int) -> int:
        """The largest step the piecewise graphs capture (0: none)."""
        if self._eager_only():
            return 0
        asked = self.config.piecewise_graph_max_tokens
        limit = DEFAULT_PIECEWISE_MAX_TOKENS if asked is None else asked
        return min(limit, max_num_batched_tokens)

    def _num_kv_blocks(self) -> int:
        budget = self.config.kv_cache_memory_bytes
        if budget is None:
            budget = self._profile_kv_budget() if self.device.type == "cuda" else DEFAULT_CPU_KV_CACHE_BYTES
        num_blocks = num_blocks_for_budget(self.arch, self.config.block_size, self.dtype, budget)
        if num_blocks < 1:
            per_block = kv_cache_bytes_per_block(self.arch, self.config.block_size, self.dtype)
            raise ValueError(f"kv_cache_memory_bytes={budget} is less than one KV block ({per_block} bytes)")
        return num_blocks

    def _num_swap_blocks(self) -> int:
        """Blocks of CPU swap space (0: preemption always recomputes)."""
        if self.config.kv_policy != "paged":
            return 0  # NOTE: a contiguous reservation never grows, so it is never preempted
        num_bytes = self.config.swap_space_bytes(self.device)
        num_cpu_blocks = num_blocks_for_budget(self.arch, self.config.block_size, self.dtype, num_bytes)
        if num_cpu_blocks < 1 and self.config.preemption_mode == "swap":
            per_block = kv_cache_bytes_per_block(self.arch, self.config.block_size, self.dtype)
            raise ValueError(
                f"preemption_mode='swap' needs a swap space of at least one KV block ({per_block} bytes); "
                f"swap_space is {num_bytes / 2**30:g} GiB on {self.device.type}"
                + (" (the default there; set swap_space)" if self.config.swap_space is None else "")
            )
        return num_cpu_blocks

    def _profile_kv_budget(self) -> int:
        """gpu_memory_utilization of the card minus weights and the largest step's peak activations."""
        config = self.config
        max_model_len = config.max_model_len or self.arch.max_position_embeddings
        max_num_batched_tokens = config.batched_token_budget(self.device, max_model_len)
        profile = profile_memory(
            self.model,
            self.arch,
            self.attention_backend,
            self.device,
            self.dtype,
            config.block_size,
            max_num_batched_tokens,
            config.max_num_seqs,
            config.gpu_memory_utilization,
        )
        # The piecewise graphs, captured once the cache exists, keep one forward pass of their largest
        # step in a pool of their own: reserve the profiled peak in proportion to its tokens (more than
        # the pool takes: the peak also holds max_num_seqs rows of logits and their sort).
        graph_tokens = self._piecewise_graph_max_tokens(max_num_batched_tokens)
        graph_reserve = profile.peak_activation_bytes * graph_tokens // max_num_batched_tokens
        kv_cache_bytes = profile.kv_cache_bytes - graph_reserve
        if kv_cache_bytes <= 0:
            gib = 2**30
            raise ValueError(
                f"no GPU memory left for the KV cache: gpu_memory_utilization={config.gpu_memory_utilization}"
                f" of {profile.total_bytes / gib:.1f} GiB minus weights {profile.weights_bytes / gib:.1f} "
                f"GiB, peak activations {profile.peak_activation_bytes / gib:.1f} GiB, "
                f"{graph_reserve / gib:.1f} GiB for the piecewise graphs and "
                f"{profile.non_torch_bytes / gib:.1f} GiB outside torch; raise gpu_memory_utilization or "
                "lower max_num_batched_tokens / max_num_seqs"
            )
        return kv_cache_bytes

    def _all_eos_token_ids(self) -> frozenset[int]:
        """The tokenizer's EOS and the model config's: each ends a request that does not ignore EOS."""
        primary = () if self.eos_token_id is None else (self.eos_token_id,)
        return frozenset((*primary, *self.arch.eos_token_ids))

    def _eos_token_id(self) -> int | None:
        if self.tokenizer is not None and self.tokenizer.eos_token_id is not None:
            return self.tokenizer.eos_token_id
        return self.arch.eos_token_ids[0] if self.arch.eos_token_ids else None

    def _attention_backend(self) -> AttentionBackend:
        """For "auto", the Triton kernels on CUDA when triton imports, else the reference backend."""
        choice = self.config.attention_backend
        if choice == "reference" or (choice == "auto" and self.device.type != "cuda"):
            return ReferenceAttentionBackend()
        if self.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            raise ValueError(
                f"attention_backend='triton' runs on CUDA devices, not {self.device.type} (there: 'auto' or "
                "'reference'; TRITON_INTERPRET=1 runs the kernels on the CPU, slowly, for tests)"
            )
        try:
            # NOTE: imported here, not at module level: it imports triton, which CPU installs may lack.
            from pagedllm.attention.triton import TritonAttentionBackend
        except ImportError as e:
            if choice == "triton":
                raise ValueError(f"attention_backend='triton' needs the triton package: {e}") from e
            logger.warning("triton is not importable (%s); using the reference attention backend", e)
            return ReferenceAttentionBackend()
        return TritonAttentionBackend()

    # -- requests ----------------------------------------------------------------------------------

    def make_request(
        self,
        prompt: PromptInput,
        params: SamplingParams,
        request_id: str | None = None,
        cache_salt: str | None = None,
    ) -> RequestTracker:
        """Validate and tokenize a request without queueing it; raises ``ValueError`` naming the problem."""
        _check_request_id(request_id)
        self.inputs.check_params(params, cache_salt)
        prompt_text, prompt_ids = self.inputs.tokenize(prompt)
        room = self.inputs.room_after(prompt_ids)
        max_tokens = room if params.max_tokens is None else min(params.max_tokens, room)
        eos = None if params.ignore_eos else self.eos_token_id
        extra_eos = set() if params.ignore_eos else set(self.arch.eos_token_ids) - {eos}
        stop = StopCriteria(
            max_tokens=max_tokens,
            min_tokens=min(params.min_tokens, max_tokens),
            eos_token_id=eos,
            stop_token_ids=frozenset(params.stop_token_ids or ()) | frozenset(extra_eos),
        )
        request_id = request_id if request_id is not None else str(next(self._request_counter))
        sequences = []
        for index in range(params.n):
            # Branch i of a seeded request draws from seed + i: distinct, and reproducible. Past the
            # largest seed it wraps round torch's range (uint64; negative seeds count from its top).
            branch_params = params
            if index and params.seed is not None:
                branch_seed = params.seed + index
                if branch_seed > MAX_SEED:
                    branch_seed -= MAX_SEED + 1
                branch_params = dataclasses.replace(params, seed=branch_seed)
            request = Request(
                request_id=request_id if index == 0 else f"{request_id}#{index}",
                prompt_token_ids=prompt_ids,
                stop=stop,
                arrival_time=time.monotonic(),
                sampling_params=branch_params,
                cache_salt=cache_salt,
            )
            detokenizer = None
            if self.tokenizer is not None:
                detokenizer = IncrementalDetokenizer(self.tokenizer, prompt_ids, params.skip_special_tokens)
            sequences.append(SequenceTracker(request, params, detokenizer, index=index))
        return RequestTracker(request_id=request_id, prompt=prompt_text, sequences=sequences)

    def make_beam_search_request(
        self,
        prompt: PromptInput,
        params: BeamSearchParams,
        request_id: str | None = None,
        cache_salt: str | None = None,
    ) -> BeamSearchRequest:
        """Validate and tokenize a beam search without queueing it; raises ``ValueError`` naming the
        problem. The prompt's sequence is the first beam; the others fork from it."""
        if not isinstance(params, BeamSearchParams):
            raise TypeError(f"beam search params must be BeamSearchParams, got {type(params).__name__}")
        _check_request_id(request_id)
        self.inputs.check_sharing_options("beam_width", params.beam_width, cache_salt)
        prompt_text, prompt_ids = self.inputs.tokenize(prompt)
        max_tokens = min(params.max_tokens, self.inputs.room_after(prompt_ids))
        # Beams that wait for their siblings hold their blocks, so all of them must fit at once. They
        # share the prompt's full blocks, but a preempted beam recomputes: it finds them again only
        # through the prefix cache, and without it needs its own while its siblings keep theirs.
        block_size = self.config.block_size
        shared = len(prompt_ids) // block_size if self.scheduler.kv.enable_prefix_caching else 0
        needed = shared + params.beam_width * (cdiv(len(prompt_ids) + max_tokens, block_size) - shared)
        if needed > self.scheduler.kv.num_blocks:
            raise ValueError(
                f"beam search of width {params.beam_width} over {len(prompt_ids)} prompt + {max_tokens} "
                f"output tokens needs up to {needed} KV blocks, more than the cache holds "
                f"({self.scheduler.kv.num_blocks}); lower beam_width or max_tokens"
            )
        eos_ids: frozenset[int] = frozenset()
        if not params.ignore_eos:
            eos_ids = self._all_eos_token_ids()
        request_id = request_id if request_id is not None else str(next(self._request_counter))
        beam_counter = itertools.count(1)
        state = BeamSearchState(
            first_sequence_id=request_id,
            beam_width=params.beam_width,
            max_tokens=max_tokens,
            length_penalty=params.length_penalty,
            eos_token_ids=eos_ids,
            new_sequence_id=lambda: self._unused_id(request_id, "beam", beam_counter),
        )
        if state.num_candidates > self.inputs.vocab_size:
            raise ValueError(
                f"beam search of width {params.beam_width} ranks {state.num_candidates} candidates a beam, "
                f"more than the vocabulary's {self.inputs.vocab_size} tokens"
            )
        # The worker samples nothing the search uses; it reports each beam's top-K log-probabilities.
        worker_params = SamplingParams(temperature=0.0, max_tokens=None, ignore_eos=True)
        # NOTE: set after construction on purpose: K may exceed the user-facing cap on ``logprobs``.
        worker_params.logprobs = state.num_candidates
        first = Request(
            request_id=request_id,
            prompt_token_ids=prompt_ids,
            stop=StopCriteria(max_tokens=max_tokens),
            arrival_time=time.monotonic(),
            sampling_params=worker_params,
            cache_salt=cache_salt,
            is_beam=True,
            beam_width=params.beam_width,
        )
        return BeamSearchRequest(request_id, prompt_text, prompt_ids, first, state)

    def _id_in_use(self, request_id: str) -> bool:
        """Whether an id names a request or a sequence the engine still tracks. User ids and the ids of
        their branches ("<id>#1", "<id>#beam1") share one namespace, so a user may pick another
        request's branch id: it is refused, never allowed to replace that branch."""
        return (
            request_id in self._trackers
            or request_id in self._beam_searches
            or request_id in self._sequences
            or request_id in self._beam_sequences
            or request_id in self.scheduler.requests
        )

    def _unused_id(self, request_id: str, kind: str, counter: Iterator[int]) -> str:
        """The next "<request_id>#<kind><k>" that no request holds (a user may have taken one)."""
        while True:
            candidate = f"{request_id}#{kind}{next(counter)}"
            if not self._id_in_use(candidate):
                return candidate

    def add_beam_search_request(self, search: BeamSearchRequest) -> None:
        if self._id_in_use(search.request_id):
            raise ValueError(f"request id {search.request_id!r} is already in use")
        self.scheduler.add_request(search.first_sequence)  # raises RequestRejectedError (a ValueError)
        self._beam_searches[search.request_id] = search
        self._beam_sequences[search.request_id] = search

    def add_tracked_request(self, tracker: RequestTracker) -> None:
        # Every id is checked before anything is queued: a refused request leaves nothing behind.
        for seq in tracker.sequences:
            sequence_id = seq.request.request_id
            if not self._id_in_use(sequence_id):
                continue
            if seq.index == 0:
                raise ValueError(f"request id {sequence_id!r} is already in use")
            raise ValueError(
                f"request {tracker.request_id!r} cannot be added: {sequence_id!r}, the id of its completion "
                f"{seq.index}, is already in use"
            )
        parent, *children = (seq.request for seq in tracker.sequences)
        self.scheduler.add_request(parent)  # raises RequestRejectedError (a ValueError)
        if children:
            # The prompt is prefilled once; the children fork from it when its first token is sampled.
            self.scheduler.add_fork_children(parent.request_id, children)
        self._trackers[tracker.request_id] = tracker
        for seq in tracker.sequences:
            self._sequences[seq.request.request_id] = (tracker, seq)
        if self._step_trace is not None:
            self._step_trace.count_add()

    def add_request(
        self, request_id: str, prompt: PromptInput, params: SamplingParams, cache_salt: str | None = None
    ) -> None:
        self.add_tracked_request(self.make_request(prompt, params, request_id, cache_salt))

    def abort_request(self, request_ids: str | Sequence[str]) -> None:
        """Abort requests (all their sequences) wherever they are; unknown ids are ignored."""
        ids = [request_ids] if isinstance(request_ids, str) else list(request_ids)
        for request_id in ids:
            search = self._beam_searches.pop(request_id, None)
            if search is not None:
                live = search.state.live_sequence_ids
                self.scheduler.finish_requests(live, RequestStatus.FINISHED_ABORTED)
                for sequence_id in live:
                    self._beam_sequences.pop(sequence_id, None)
                continue
            tracker = self._trackers.pop(request_id, None)
            if tracker is None:
                continue
            sequence_ids = [seq.request.request_id for seq in tracker.sequences]
            self.scheduler.finish_requests(sequence_ids, RequestStatus.FINISHED_ABORTED)
            for sequence_id in sequence_ids:
                self._sequences.pop(sequence_id, None)

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished_requests()

    # -- one step ----------------------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        """Run one scheduled batch; returns an output for every request that received tokens.

        With async scheduling a step's tokens are returned by the next call: each call launches a step
        on the device, then waits for the one launched before it and processes its tokens while the new
        one runs (``_step_async``).
        """
        touched, beam_outputs = self._run_step()
        outputs = [t.to_output() for t in touched if t.is_finished or t.stream_outputs]
        return outputs + beam_outputs

    def step_deltas(self) -> list[RequestDelta]:
        """``step``, reported as what each request that received tokens gained in it (the server's
        engine core sends these). Beam searches are not served: only ``step`` reports them."""
        touched, beam_outputs = self._run_step()
        assert not beam_outputs, "step_deltas does not report beam searches"
        return [tracker.take_delta() for tracker in touched]

    def _run_step(self) -> StepResult:
        trace = self._step_trace
        started = time.perf_counter() if trace is not None else 0.0
        self._last_launched = None
        if self.async_scheduling:
            result = self._step_async()
        else:
            sched = self._schedule()
            self._last_launched = (sched, False)
            result = self._process(sched, self.runner.execute(sched))
        if trace is not None:
            launched, ahead = self._last_launched or (None, False)
            trace.record(started, launched, ahead, len(self.scheduler.waiting))
        return result

    def _schedule(self) -> SchedulerOutput:
        sched = self.scheduler.schedule()
        if self.kv_stats is not None:
            self.kv_stats.record(sched, time.perf_counter())
        for request_id in sched.preempted_request_ids:
            if request_id in self._beam_sequences:
                self._beam_sequences[request_id].state.forget_report(request_id)
        return sched

    def _step_async(self) -> StepResult:
        """Launch the next step before processing the one in flight, so the host's work on step N's
        tokens (stop checks, outputs) and on step N+1's inputs overlaps the device running N+1.

        ``Scheduler.schedule_ahead`` schedules N+1 assuming every sequence of N goes on (admitting
        waiting requests and continuing prefill chunks too); it declines when N+1 would need a
        preemption, a swap, a fork or a beam, and ``ModelRunner.can_feed_next_step`` when sampling
        would read state one token behind (penalties, ``min_tokens``). Then the step in flight is
        finished first and the next one is scheduled as in the synchronous path, with nothing in
        flight: ``schedule`` never runs beside a launched step.
        """
        outputs: StepResult = ([], [])
        in_flight = self._in_flight
        if in_flight is not None:
            sched, step = in_flight
            self._in_flight = None
            if self.runner.can_feed_next_step(step):
                t = time.perf_counter()
                ahead = self.scheduler.schedule_ahead(sched)
                if ahead is not None:
                    if self.kv_stats is not None:  # the pool as the ahead step has it, not as collected
                        self.kv_stats.record(ahead, time.perf_counter(), in_flight=sched)
                    next_step = self.runner.launch(ahead, step)
                    self._mark("launch_ahead", t)
                    # NOTE: a step scheduled ahead samples (``schedule_ahead``), so it has tokens to
                    # collect: nothing of it is left to process here.
                    assert next_step is not None, "a step scheduled ahead samples nothing"
                    self._in_flight = (ahead, next_step)
                    self._last_launched = (ahead, True)
                    self.num_steps_scheduled_ahead += 1
            if self._in_flight is None and HASH_AHEAD:
                # The next step is scheduled once this one is collected: its admissions' hashing is
                # done now, while the device still runs this step.
                t = time.perf_counter()
                self.scheduler.prepare_admissions()
                self._mark("prepare", t)
            t = time.perf_counter()
            model_output = self.runner.collect(step)
            self._mark("collect", t)
            t = time.perf_counter()
            outputs = self._process(sched, model_output)
            self._mark("process", t)
            if self._in_flight is not None:
                return outputs
            if not self.scheduler.has_unfinished_requests():
                return outputs
        t = time.perf_counter()
        sched = self._schedule()
        self._mark("schedule", t)
        t = time.perf_counter()
        launched = self.runner.launch(sched)
        self._mark("launch", t)
        self._last_launched = (sched, False)
        if launched is None:
            touched, beam_outputs = self._process(sched, ModelOutput())
            return outputs[0] + touched, outputs[1] + beam_outputs
        self._in_flight = (sched, launched)
        return outputs

    def _mark(self, phase: str, started: float) -> None:
        if self._step_trace is not None:
            self._step_trace.mark(phase, started)

    def _process(self, sched: SchedulerOutput, model_output: ModelOutput) -> StepResult:
        """The host's side of a finished step: token-level stops, detokenization, stop strings; returns
        the requests that may have an output and the beam searches that finished."""
        updated = self.scheduler.update_from_output(sched, model_output.sampled_token_ids)
        stopped_by_string: list[str] = []
        touched: dict[str, RequestTracker] = {}  # requests that may have an output this step
        sequences = self._sequences
        logprobs = model_output.logprobs
        for request in updated:
            tracker, seq = sequences[request.request_id]
            # NOTE: per request per step: a sequence nobody watches token by token (LLM.generate
            # without stop strings or logprobs) costs two lookups here, and is detokenized at its end.
            if tracker.stream_outputs or seq.needs_every_token:
                seq.on_token(logprobs.get(request.request_id) if logprobs else None, self.tokenizer)
                if seq.stop_string is not None and not request.is_finished:
                    stopped_by_string.append(request.request_id)
                touched[tracker.request_id] = tracker
            elif request.is_finished:
                touched[tracker.request_id] = tracker
        if stopped_by_string:
            self.scheduler.finish_requests(stopped_by_string, RequestStatus.FINISHED_STOPPED)
        for request in updated:
            if request.is_finished:
                _, seq = self._sequences.pop(request.request_id)
                seq.on_finish()
        for request_id, tracker in touched.items():
            if tracker.is_finished:
                del self._trackers[request_id]
        beam_outputs = self._advance_beam_searches(sched, model_output) if self._beam_searches else []
        return list(touched.values()), beam_outputs

    def _advance_beam_searches(
        self, sched: SchedulerOutput, model_output: ModelOutput
    ) -> list[RequestOutput]:
        """Hand each sampled beam's top-K to its search; apply the searches that chose their next beams."""
        finished = []
        for item in sched.scheduled:
            search = self._beam_sequences.get(item.request_id) if item.needs_sample else None
            if search is None or self.scheduler.live_request(item) is None:
                continue  # (aborted while the step ran, its id maybe taken by a new search since)
            top = [(token, logprob) for token, logprob, _ in model_output.logprobs[item.request_id][1:]]
            beam_step = search.state.report(item.request_id, top)
            if beam_step is None:
                continue  # its siblings have not been sampled yet
            self._apply_beam_step(search, beam_step)
            if beam_step.done:
                del self._beam_searches[search.request_id]
                finished.append(search.to_output(self.tokenizer))
        return finished

    def _apply_beam_step(self, search: BeamSearchRequest, beam_step: BeamStep) -> None:
        # Forks first: a child copies its parent's tokens before the parent's own next token is added.
        for parent_id, child_id, token_id in beam_step.forks:
            self.scheduler.fork_beam(parent_id, child_id)
            self.scheduler.extend_beam(child_id, token_id)
            self._beam_sequences[child_id] = search
        for sequence_id, token_id in beam_step.extends:
            self.scheduler.extend_beam(sequence_id, token_id)
        self.scheduler.finish_requests(beam_step.drops, RequestStatus.FINISHED_STOPPED)
        for sequence_id in beam_step.drops:
            del self._beam_sequences[sequence_id]

    # -- observability -----------------------------------------------------------------------------

    def start_kv_stats(self) -> KVStatsRecorder:
        """Start sampling the KV pool every step, from now on (a fresh recorder replaces any earlier one)."""
        self.kv_stats = KVStatsRecorder(self.scheduler)
        return self.kv_stats

    def core_stats(self) -> CoreStats:
        """The counters ``/metrics`` shows, O(1) (``kv_cache_stats`` walks every block table)."""
        scheduler, kv = self.scheduler, self.scheduler.kv
        return CoreStats(
            num_running=len(scheduler.running),
            num_waiting=len(scheduler.waiting),
            num_swapped=len(scheduler.swapped),
            num_blocks=kv.num_blocks,
            num_free_blocks=kv.num_free_blocks,
            num_cpu_blocks=kv.num_cpu_blocks,
            num_free_cpu_blocks=kv.num_free_cpu_blocks,
            num_preemptions=scheduler.num_preemptions,
            num_swap_preemptions=scheduler.num_swap_preemptions,
            prefix_cache_queries=kv.num_prefix_queries,
            prefix_cache_hits=kv.num_prefix_hits,
            num_steps_scheduled_ahead=self.num_steps_scheduled_ahead,
        )

    def kv_cache_stats(self) -> dict[str, float | int]:
        stats = self.scheduler.kv_cache_stats().as_dict()
        stats["num_preemptions"] = self.scheduler.num_preemptions
        stats["num_swap_preemptions"] = self.scheduler.num_swap_preemptions
        stats["num_recompute_preemptions"] = (
            self.scheduler.num_preemptions - self.scheduler.num_swap_preemptions
        )
        stats["num_swapped"] = len(self.scheduler.swapped)
        stats["prefix_cache_queries"] = self.scheduler.kv.num_prefix_queries
        stats["prefix_cache_hits"] = self.scheduler.kv.num_prefix_hits
        stats["num_running"] = len(self.scheduler.running)
        stats["num_waiting"] = len(self.scheduler.waiting)
        return stats


def _check_request_id(request_id: object) -> None:
    if request_id is not None and not isinstance(request_id, str):
        raise TypeError(f"request_id must be a str, got {type(request_id).__name__}: {request_id!r}")
