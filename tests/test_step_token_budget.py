"""How many tokens a step may compute when ``max_num_batched_tokens`` is not given: small steps for the
server, larger ones for an offline batch on a large Hopper GPU (``EngineConfig.batched_token_budget``)."""

from __future__ import annotations

import json

import pytest
import torch
from model_harness import GPU_LLAMA_CONFIG

from pagedllm import LLM
from pagedllm.config import OFFLINE_BATCHED_TOKENS, SERVER_BATCHED_TOKENS, EngineConfig

CPU = torch.device("cpu")


def test_the_server_and_cpu_runs_take_the_small_budget_and_never_less_than_max_model_len():
    assert EngineConfig().batched_token_budget(CPU, 2048) == SERVER_BATCHED_TOKENS == 8192
    assert EngineConfig(usage="offline").batched_token_budget(CPU, 2048) == SERVER_BATCHED_TOKENS
    assert EngineConfig(usage="offline").batched_token_budget(CPU, 40_000) == 40_000


def test_an_explicit_budget_wins_and_an_unknown_usage_is_refused():
    assert EngineConfig(usage="offline", max_num_batched_tokens=512).batched_token_budget(CPU, 2048) == 512
    with pytest.raises(ValueError, match="usage='batch'"):
        EngineConfig(usage="batch")


def test_the_llm_class_schedules_with_the_offline_budget(tmp_path):
    """The LLM class is the offline user: on a Hopper GPU of >= 70 GiB its steps take up to
    ``OFFLINE_BATCHED_TOKENS``; anywhere else (this CPU included) the server's budget."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GPU_LLAMA_CONFIG))
    llm = LLM(str(path), load_format="dummy", max_model_len=256, kv_cache_memory_bytes=1 << 26)
    assert llm.config.usage == "offline"
    device = llm.engine.device
    large_hopper = device.type == "cuda" and (
        torch.cuda.get_device_capability(device)[0] >= 9
        and torch.cuda.get_device_properties(device).total_memory >= 70 * 2**30
    )
    expected = OFFLINE_BATCHED_TOKENS if large_hopper else SERVER_BATCHED_TOKENS
    assert llm.engine.scheduler.config.max_num_batched_tokens == expected
