"""Engine options, validated once: what the user asked for, before anything is loaded."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pagedllm.core.kv_policy import KV_POLICIES
from pagedllm.core.scheduler import DEFAULT_SWAP_THRESHOLD_TOKENS, PREEMPTION_MODES

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}
ATTENTION_BACKENDS = ("auto", "reference", "triton")
LOAD_FORMATS = ("auto", "safetensors", "gguf", "dummy")
# On a CPU there is no card to size the cache from; this is plenty for SmolLM2 (~23k tokens in fp32).
DEFAULT_CPU_KV_CACHE_BYTES = 1 << 30
# Swap space when none is given: vLLM's 4 GiB of pinned host memory on CUDA; none on a CPU, where the
# "swap" would be a copy within the same memory the KV cache could have used.
DEFAULT_CUDA_SWAP_SPACE_GIB = 4.0
# Tokens a step may compute when max_num_batched_tokens is not given (never below max_model_len). The
# server keeps steps small, for the inter-token latency of the requests decoding beside a prefill; an
# offline batch (the LLM class) wants throughput, and on a large Hopper GPU fewer, larger prefill steps
# give it: the Llama-3.2-1B workload of 256 x (512 in, 128 out) made 4.1% more output tok/s at 16,384
# than at 8,192 on an H100 (docs/PERFORMANCE.md "Session 25"). vLLM's LLM class and server default alike.
SERVER_BATCHED_TOKENS = 8192
OFFLINE_BATCHED_TOKENS = 16384
USAGES = ("server", "offline")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    model: str | None = None  # None: the built-in SmolLM2-135M-Instruct
    dtype: str = "auto"  # auto: float32 on CPU, bfloat16 on CUDA
    block_size: int = 16
    max_model_len: int | None = None  # None: the model's context, capped by what the KV cache holds
    max_num_seqs: int = 256
    max_num_batched_tokens: int | None = None  # None: batched_token_budget's default
    kv_cache_memory_bytes: int | None = None
    gpu_memory_utilization: float = 0.9
    device: str = "auto"
    seed: int = 0
    enable_chunked_prefill: bool = True
    enable_prefix_caching: bool = True  # paged policy only: contiguous reservations never share
    kv_policy: str = "paged"  # or "contiguous": reserve max_model_len slots per request (the baseline)
    record_kv_stats: bool = False  # sample the KV pool every step (LLM.kv_stats_report)
    attention_backend: str = "auto"
    load_format: str = "auto"
    enforce_eager: bool = False  # CUDA: no graphs at all (every step eager)
    # CUDA: steps that are not pure decodes, up to this many tokens, replay piecewise graphs (every layer
    # but its attention captured; worker/piecewise_graphs.py). None: 2048 (within max_num_batched_tokens);
    # 0: such steps run eagerly.
    piecewise_graph_max_tokens: int | None = None
    swap_space: float | None = None  # GiB of CPU swap space for preemption; None: 4 on CUDA, 0 on CPU
    preemption_mode: str = "auto"  # auto (by cost), recompute, or swap
    swap_threshold_tokens: int = DEFAULT_SWAP_THRESHOLD_TOKENS  # auto: swap from this many tokens up
    # Schedule the next decode step while the device runs this one (vLLM's --async-scheduling); None:
    # on with CUDA, off on a CPU (where the model runs on the host's own thread: nothing to overlap).
    async_scheduling: bool | None = None
    # Who drives the engine, for defaults that trade latency against throughput (batched_token_budget):
    # "server" (the HTTP server) or "offline" (the LLM class).
    usage: str = "server"

    def __post_init__(self) -> None:
        if self.dtype != "auto" and self.dtype not in _DTYPES:
            raise ValueError(
                f"dtype={self.dtype!r} is not supported; choose auto or one of {sorted(_DTYPES)}"
            )
        if not isinstance(self.block_size, int) or not 1 <= self.block_size <= 256:
            raise ValueError(f"block_size must be an integer in [1, 256], got {self.block_size!r}")
        for name in ("max_model_len", "max_num_batched_tokens", "kv_cache_memory_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or an integer >= 1, got {value!r}")
        if self.piecewise_graph_max_tokens is not None and (
            not isinstance(self.piecewise_graph_max_tokens, int) or self.piecewise_graph_max_tokens < 0
        ):
            raise ValueError(
                "piecewise_graph_max_tokens must be None or an integer >= 0, "
                f"got {self.piecewise_graph_max_tokens!r}"
            )
        if not isinstance(self.max_num_seqs, int) or self.max_num_seqs < 1:
            raise ValueError(f"max_num_seqs must be an integer >= 1, got {self.max_num_seqs!r}")
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.attention_backend not in ATTENTION_BACKENDS:
            raise ValueError(
                f"attention_backend={self.attention_backend!r}; choose one of {ATTENTION_BACKENDS}"
            )
        if self.kv_policy not in KV_POLICIES:
            raise ValueError(f"kv_policy={self.kv_policy!r}; choose one of {KV_POLICIES}")
        if self.load_format not in LOAD_FORMATS:
            raise ValueError(f"load_format={self.load_format!r}; choose one of {LOAD_FORMATS}")
        if self.swap_space is not None and (
            isinstance(self.swap_space, bool)
            or not isinstance(self.swap_space, (int, float))
            or not 0 <= self.swap_space < 1024
        ):
            raise ValueError(
                f"swap_space must be None or a number of GiB in [0, 1024), got {self.swap_space!r}"
            )
        if self.preemption_mode not in PREEMPTION_MODES:
            raise ValueError(f"preemption_mode={self.preemption_mode!r}; choose one of {PREEMPTION_MODES}")
        if self.preemption_mode == "swap" and self.swap_space == 0:
            raise ValueError("preemption_mode='swap' needs swap_space > 0 (GiB of CPU memory to swap into)")
        if self.usage not in USAGES:
            raise ValueError(f"usage={self.usage!r}; choose one of {USAGES}")
        if not isinstance(self.swap_threshold_tokens, int) or self.swap_threshold_tokens < 0:
            raise ValueError(
                f"swap_threshold_tokens must be an integer >= 0, got {self.swap_threshold_tokens!r}"
            )

    def uses_async_scheduling(self, device: torch.device) -> bool:
        return device.type == "cuda" if self.async_scheduling is None else self.async_scheduling

    def batched_token_budget(self, device: torch.device, max_model_len: int) -> int:
        """``max_num_batched_tokens``, or the default for this usage and device: ``OFFLINE_BATCHED_TOKENS``
        for an offline batch on a Hopper-or-later GPU of at least 70 GiB (where it was measured),
        ``SERVER_BATCHED_TOKENS`` otherwise; never below ``max_model_len``, so any prompt fits a step."""
        if self.max_num_batched_tokens is not None:
            return self.max_num_batched_tokens
        large_gpu = device.type == "cuda" and _is_large_hopper(torch.cuda.get_device_properties(device))
        default = OFFLINE_BATCHED_TOKENS if self.usage == "offline" and large_gpu else SERVER_BATCHED_TOKENS
        return max(default, max_model_len)

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except RuntimeError as e:
            raise ValueError(f"device={self.device!r} is not a torch device: {e}") from None
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(f"device={self.device!r}, but this machine has no CUDA GPU torch can use")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise ValueError(
                    f"device={self.device!r}, but this machine has {torch.cuda.device_count()} CUDA GPU(s)"
                )
        return device

    def swap_space_bytes(self, device: torch.device) -> int:
        gib = self.swap_space
        if gib is None:
            gib = DEFAULT_CUDA_SWAP_SPACE_GIB if device.type == "cuda" else 0.0
        return int(gib * 2**30)

    def torch_dtype(self, device: torch.device) -> torch.dtype:
        if self.dtype == "auto":
            return torch.bfloat16 if device.type == "cuda" else torch.float32
        return _DTYPES[self.dtype]


def _is_large_hopper(props: torch.cuda._CudaDeviceProperties) -> bool:
    return props.major >= 9 and props.total_memory >= 70 * 2**30
