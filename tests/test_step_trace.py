"""``PAGEDLLM_STEP_TRACE``: one JSON line per engine step, what the server's performance work reads."""

from __future__ import annotations

import gc
import json

import pytest
from model_harness import TINY_CONFIG

from pagedllm import LLM, SamplingParams
from pagedllm.engine.step_trace import TRACE_ENV

TINY = {**TINY_CONFIG, "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 512}


@pytest.mark.parametrize("async_scheduling", [False, True])
def test_the_trace_has_a_row_per_step_with_its_shape_and_adds(tmp_path, monkeypatch, async_scheduling):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY))
    monkeypatch.setenv(TRACE_ENV, str(tmp_path / "new-dir" / "trace"))  # the folder is created
    llm = LLM(str(config), load_format="dummy", async_scheduling=async_scheduling)
    prompts = [[1, 2, 3, 4, 5], [6, 7, 8]]
    llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True), use_tqdm=False)
    path = llm.engine._step_trace.path
    rows = [json.loads(line) for line in path.read_text().splitlines()]

    assert rows[0]["tokens"] == rows[0]["prefill_tokens"] == 8 and rows[0]["seqs"] == 2
    assert sum(row["adds"] for row in rows) == 2
    # Every output token but each request's first comes from a one-token decode launch.
    assert sum(row["tokens"] - row["prefill_tokens"] for row in rows) == 2 * 3
    assert all(row["ms"] >= 0 and row["gc_ms"] >= 0 for row in rows)
    assert any(row["ahead"] for row in rows) == async_scheduling
    if async_scheduling:
        assert {"launch", "collect", "process"} <= {phase for row in rows for phase in row["phases"]}

    callbacks = len(gc.callbacks)
    del llm
    gc.collect()
    assert len(gc.callbacks) == callbacks - 1, "the trace's GC timer outlived its engine"
