"""32 concurrent greedy requests through HTTP give exactly what offline ``LLM.generate`` gives."""

from __future__ import annotations

import asyncio

import openai
import pytest
from server_harness import API_KEY, MODEL_NAME

from pagedllm import SamplingParams

PROMPTS = [
    f"{subject} {verb}"
    for subject in (
        "The capital of France",
        "My favourite food",
        "A paged KV cache",
        "The ocean",
        "Python code",
    )
    for verb in ("is", "was", "will be", "can be", "looks like", "means", "has")
][:32]
MAX_TOKENS = 12


@pytest.mark.slow
def test_32_concurrent_greedy_http_requests_match_offline_generate(server, smollm):
    assert len(set(PROMPTS)) == 32
    offline = smollm.generate(PROMPTS, SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS), use_tqdm=False)

    async def all_at_once():
        client = openai.AsyncOpenAI(
            base_url=f"{server.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=300
        )
        async with client:
            return await asyncio.gather(
                *(
                    client.completions.create(
                        model=MODEL_NAME, prompt=p, max_tokens=MAX_TOKENS, temperature=0.0
                    )
                    for p in PROMPTS
                )
            )

    online = asyncio.run(all_at_once())
    got = [(r.choices[0].text, r.choices[0].finish_reason, r.usage.completion_tokens) for r in online]
    want = [(o.outputs[0].text, o.outputs[0].finish_reason, len(o.outputs[0].token_ids)) for o in offline]
    assert got == want
