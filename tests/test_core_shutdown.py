"""Shutting the engine core down while its outputs pile up unread: it must still exit by itself."""

from __future__ import annotations

import asyncio
import json
import time

from model_harness import TINY_CONFIG

from pagedllm.config import EngineConfig
from pagedllm.engine.core_client import EngineCoreClient
from pagedllm.engine.core_messages import AddRequest, StepOutput
from pagedllm.sampling_params import SamplingParams


def test_close_drains_outputs_so_a_core_blocked_on_a_full_pipe_exits_cleanly(tmp_path):
    """The API process stalls (here: its event loop sleeps) while 64 requests stream, so the core fills
    the output pipe and blocks writing. ``close`` must keep reading until the core has seen
    ``ShutdownCore`` and exited on its own: it used to stop reading first, so the core never read the
    command and was killed at the timeout."""
    config_path = tmp_path / "config.json"
    config_path.write_text(
        json.dumps({**TINY_CONFIG, "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 4096})
    )
    config = EngineConfig(
        model=str(config_path), load_format="dummy", dtype="float32", kv_cache_memory_bytes=64 << 20
    )
    client = EngineCoreClient(config)

    async def main() -> float:
        outputs: list[StepOutput] = []
        client.attach(outputs.append, lambda reason: None)
        params = SamplingParams(temperature=0.0, max_tokens=4000, ignore_eos=True)
        for i in range(64):
            client.send(AddRequest(f"r{i}", [1 + i % 200, 2, 3], params))
        while not outputs:
            await asyncio.sleep(0.01)
        time.sleep(4)  # the loop stalls: nothing reads the outputs meanwhile
        start = time.monotonic()
        await client.close(timeout=3.0)
        return time.monotonic() - start

    seconds = asyncio.run(main())
    assert client.process.exitcode == 0, f"the core was killed (exit code {client.process.exitcode})"
    assert seconds < 3.0
