"""The physical limit of a workload (``../shared/BENCHMARKS.md``): measured ceilings and the floor.

Prefill is compute-bound: its matmul FLOPs (plus causal attention's) over the measured matmul rate.
Decode is memory-bound: every step reads every weight once and every live K/V byte once, over the
measured device-to-device copy bandwidth (bytes read + written). The decode steps are those of an ideal
continuous batch: up to ``max_num_seqs`` sequences at once, a finished one replaced at once by the next.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from pagedllm.model.config import ModelArchConfig, kv_bytes_per_token


@dataclass(frozen=True, slots=True)
class Ceilings:
    matmul_flops_per_s: float  # in the model dtype
    copy_bytes_per_s: float  # device-to-device copy, bytes read + written


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Any, device: torch.device, reps: int) -> float:
    """Median seconds per call of ``fn`` (warm). On a GPU each call is timed between CUDA events, queued
    back to back on the device's stream with one synchronisation at the end. Host timing counted each
    call's launch and synchronisation too, and the copy bandwidths it gave varied 6% from run to run on
    one H100 (2.79-2.96 TB/s in sessions 17-18)."""
    fn()
    _sync(device)
    if device.type == "cuda":
        events = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)
        ]
        stream = torch.cuda.current_stream(device)  # where fn's kernels on this device go
        for start, end in events:
            start.record(stream)
            fn()
            end.record(stream)
        _sync(device)
        times = [start.elapsed_time(end) * 1e-3 for start, end in events]
    else:
        times = []
        for _ in range(reps):
            began = time.perf_counter()
            fn()
            times.append(time.perf_counter() - began)
    return sorted(times)[len(times) // 2]


def copy_bytes_per_s(device: torch.device, num_bytes: int | None = None) -> float:
    """Bytes per second of a large device-to-device copy, counting bytes read plus bytes written."""
    on_gpu = device.type == "cuda"
    num_bytes = num_bytes or (1 << 30 if on_gpu else 64 << 20)
    src = torch.randn(num_bytes // 4, device=device)
    dst = torch.empty_like(src)
    return 2 * num_bytes / median_seconds(lambda: dst.copy_(src), device, 20 if on_gpu else 3)


def measure_ceilings(device: torch.device, dtype: torch.dtype) -> Ceilings:
    """The two ceilings of ``device``, measured now (medians of several repeats, random data, warm)."""
    on_gpu = device.type == "cuda"
    n = 8192 if on_gpu else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    matmul_s = median_seconds(lambda: a @ b, device, 10 if on_gpu else 3)
    return Ceilings(matmul_flops_per_s=2 * n**3 / matmul_s, copy_bytes_per_s=copy_bytes_per_s(device))


@dataclass(frozen=True, slots=True)
class ModelCosts:
    """Sizes the floor needs, from the architecture alone (no weights)."""

    layer_params: int  # every decoder layer's weights (what each token multiplies through)
    lm_head_params: int
    weight_bytes_per_step: int  # what one decode step reads: layers + lm_head (+ final norm)
    kv_bytes_per_token: int
    attention_flops_per_pair: int  # 2 (QK^T) + 2 (PV) FLOPs x heads x head_dim x layers, per (q, k) pair

    @classmethod
    def of(cls, arch: ModelArchConfig, dtype_bytes: int) -> ModelCosts:
        h, q, kv, inter = arch.hidden_size, arch.q_size, arch.kv_size, arch.intermediate_size
        attn = h * (q + 2 * kv) + q * h + (q + 2 * kv if arch.attention_bias else 0)
        mlp = 3 * h * inter
        norms = 2 * h
        layer = attn + mlp + norms
        layer_params = arch.num_hidden_layers * layer
        lm_head = arch.vocab_size * h
        return cls(
            layer_params=layer_params,
            lm_head_params=lm_head,
            # The embedding lookup reads a few rows only; a tied head is read once, as the head.
            weight_bytes_per_step=(layer_params + lm_head + h) * dtype_bytes,
            kv_bytes_per_token=kv_bytes_per_token(arch, dtype_bytes),
            attention_flops_per_pair=4 * arch.num_attention_heads * arch.head_dim * arch.num_hidden_layers,
        )


def ideal_decode_steps(
    prompt_lens: list[int], output_lens: list[int], max_num_seqs: int
) -> tuple[int, int, int]:
    """(decode steps, sum over steps of the batch size, sum over steps of live context tokens) of an ideal
    continuous batch: prompts admitted in order, at most ``max_num_seqs`` decoding at once.

    The first output token of each request comes from its prefill; each later one from a decode step
    that reads the request's whole context so far (prompt + outputs, including the new token's K/V).
    """
    steps = batch_sum = context_sum = 0
    running: list[tuple[int, int]] = []  # heap of (step at which it is done decoding, index)
    start_step: dict[int, int] = {}
    next_index = 0
    step = 0
    while next_index < len(prompt_lens) or running:
        while True:
            while running and running[0][0] <= step:
                heapq.heappop(running)
            if next_index < len(prompt_lens) and len(running) < max_num_seqs:
                start_step[next_index] = step
                heapq.heappush(running, (step + max(0, output_lens[next_index] - 1), next_index))
                next_index += 1
                continue
            break
        if not running:
            continue
        steps += 1
        batch_sum += len(running)
        for _, index in running:
            # The step's input is output token number `done` (0-based) at position prompt + done; the
            # context after the step holds prompt + done + 1 tokens.
            done = step - start_step[index]
            context_sum += prompt_lens[index] + done + 1
        step += 1
    return steps, batch_sum, context_sum


def throughput_floor(
    arch: ModelArchConfig,
    prompt_lens: list[int],
    output_lens: list[int],
    max_num_seqs: int,
    ceilings: Ceilings,
    dtype_bytes: int,
    n: int = 1,
) -> dict[str, Any]:
    """Seconds the workload needs at least, split into prefill (compute) and decode (bytes).

    With ``n`` parallel samples a prompt is prefilled once and decoded ``n`` times (the branches share
    its K/V blocks, but each branch's attention still reads them).
    """
    costs = ModelCosts.of(arch, dtype_bytes)
    prompt_tokens = sum(prompt_lens)
    output_tokens = n * sum(output_lens)
    causal_pairs = sum(n * (n + 1) // 2 for n in prompt_lens)
    prefill_flops = (
        2 * costs.layer_params * prompt_tokens
        + 2 * costs.lm_head_params * len(prompt_lens)
        + costs.attention_flops_per_pair * causal_pairs
    )
    prefill_s = prefill_flops / ceilings.matmul_flops_per_s
    steps, batch_sum, context_sum = ideal_decode_steps(
        [p for p in prompt_lens for _ in range(n)], [m for m in output_lens for _ in range(n)], max_num_seqs
    )
    weight_read_s = steps * costs.weight_bytes_per_step / ceilings.copy_bytes_per_s
    kv_read_s = context_sum * costs.kv_bytes_per_token / ceilings.copy_bytes_per_s
    decode_s = weight_read_s + kv_read_s
    # Not part of the floor's definition, reported beside it: at large batches the decode's matmuls
    # (2 FLOPs per weight per token) take about as long as reading the weights.
    decode_flops_s = 2 * (costs.layer_params + costs.lm_head_params) * batch_sum / ceilings.matmul_flops_per_s
    floor_s = prefill_s + decode_s
    return {
        **asdict(ceilings),
        "weight_bytes_per_step": costs.weight_bytes_per_step,
        "kv_bytes_per_token": costs.kv_bytes_per_token,
        "prefill_flops": prefill_flops,
        "prefill_floor_s": prefill_s,
        "decode_steps": steps,
        "decode_weight_read_s": weight_read_s,
        "decode_kv_read_s": kv_read_s,
        "decode_floor_s": decode_s,
        "decode_matmul_s_if_compute_bound": decode_flops_s,
        "floor_s": floor_s,
        "roofline_output_tokens_per_s": output_tokens / floor_s if floor_s > 0 else float("inf"),
    }


def decode_step_floor_s(
    arch: ModelArchConfig, context_lens: list[int], ceilings: Ceilings, dtype_bytes: int
) -> float:
    """One decode step over sequences of these context lengths (after the step): bytes over bandwidth."""
    costs = ModelCosts.of(arch, dtype_bytes)
    return (costs.weight_bytes_per_step + sum(context_lens) * costs.kv_bytes_per_token) / (
        ceilings.copy_bytes_per_s
    )
