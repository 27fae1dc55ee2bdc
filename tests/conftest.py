"""Shared fixtures: the real SmolLM2 engine (session-scoped: loading it costs seconds) and its reference."""

from __future__ import annotations

import pytest
import torch
from smollm_reference import REFERENCE_PROMPTS, reference_greedy

from pagedllm import LLM

# The CI machine has 2 cores; more threads than cores only adds contention.
torch.set_num_threads(min(2, torch.get_num_threads()))

NUM_REFERENCE_TOKENS = 64


@pytest.fixture(scope="session")
def smollm() -> LLM:
    return LLM(dtype="float32", seed=0)


@pytest.fixture(scope="session")
def smollm_reference() -> list[dict[str, list[int]]]:
    return reference_greedy(REFERENCE_PROMPTS, NUM_REFERENCE_TOKENS)


def assert_all_blocks_free(llm: LLM) -> None:
    stats = llm.kv_cache_stats()
    assert stats["num_free_blocks"] == stats["num_blocks"], f"blocks still held after generate: {stats}"
    llm.engine.scheduler.check_invariants()


@pytest.fixture(scope="session")
def server():
    """One ``pagedllm serve`` process (SmolLM2, float32, API key) shared by the server tests."""
    from server_harness import API_KEY, start_server

    process = start_server(
        "--dtype", "float32", "--api-key", API_KEY, "--max-model-len", "512",
        "--kv-cache-memory-bytes", str(128 << 20),
    )  # fmt: skip
    yield process
    process.stop()
