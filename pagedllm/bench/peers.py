"""Hugging Face transformers on the same prompts: ``generate`` on padded static batches, and
``generate_batch`` (its continuous batching over a paged cache).

Both get the same random-weight model shape (or the same checkpoint) and must produce exactly the
requested number of tokens (EOS ignored). A padded batch cannot stop rows one by one: it generates the
batch's longest output for every row and is credited only with the requested tokens.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import torch

from pagedllm.bench.workload import Workload


def load_hf_model(model: str | None, dtype: torch.dtype, device: torch.device, attn: str) -> Any:
    """The transformers model for ``model`` (None = the built-in SmolLM2 GGUF): real weights for a
    checkpoint, random ones for a ``config.json``."""
    import json

    from transformers import AutoConfig, AutoModelForCausalLM

    if model is None:
        from pagedllm.model.default_model import default_model_path

        gguf = default_model_path()
        return (
            AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=dtype, attn_implementation=attn
            )
            .to(device)
            .eval()
        )
    path = Path(model)
    if path.is_file() and path.suffix == ".json":
        raw = json.loads(path.read_text())
        raw.pop("torch_dtype", None)
        raw.pop("dtype", None)
        config = AutoConfig.for_model(raw.pop("model_type"), **raw)
        config._attn_implementation = attn
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                hf = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn)
        finally:
            torch.set_default_dtype(previous)
        return hf.eval()
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn).to(device).eval()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def run_hf_generate(hf: Any, workload: Workload, batch_size: int, device: torch.device) -> dict[str, Any]:
    """Greedy ``generate`` over left-padded batches of ``batch_size`` prompts, in order."""
    pad_id = 0
    order = list(range(len(workload.prompts)))
    generated = 0

    def batch_inputs(rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        prompts = [workload.prompts[i] for i in rows]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        return ids, mask

    warm_ids, warm_mask = batch_inputs(order[:2])
    hf.generate(warm_ids[:, -16:], attention_mask=warm_mask[:, -16:], max_new_tokens=4, pad_token_id=pad_id)
    _sync(device)
    start = time.perf_counter()
    for lo in range(0, len(order), batch_size):
        rows = order[lo : lo + batch_size]
        ids, mask = batch_inputs(rows)
        max_new = max(workload.output_lens[i] for i in rows)
        out = hf.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=max_new,
            min_new_tokens=max_new,
            do_sample=False,
            pad_token_id=pad_id,
        )
        if out.shape[1] - ids.shape[1] != max_new:
            raise RuntimeError(f"generate produced {out.shape[1] - ids.shape[1]} tokens, not {max_new}")
        generated += len(rows) * max_new
    _sync(device)
    elapsed = time.perf_counter() - start
    useful = workload.num_output_tokens
    total = workload.num_prompt_tokens + useful
    return {
        "system": "hf_generate_padded",
        "batch_size": batch_size,
        "seconds": elapsed,
        "output_tokens": useful,
        "generated_tokens_incl_padding": generated,
        "requests_per_s": len(workload.prompts) / elapsed,
        "total_tokens_per_s": total / elapsed,
        "output_tokens_per_s": useful / elapsed,
    }


@torch.no_grad()  # NOTE: not inference_mode: generate_batch's worker thread updates its own tensors
def run_hf_generate_batch(hf: Any, workload: Workload, device: torch.device) -> dict[str, Any]:
    """transformers' continuous batching (``generate_batch``); needs one output length for all."""
    from transformers import GenerationConfig

    max_new = max(workload.output_lens)
    # eos -1: no token stops a request (ignore_eos), so every request makes max_new tokens.
    config = GenerationConfig(max_new_tokens=max_new, do_sample=False, eos_token_id=-1, pad_token_id=0)
    hf.generate_batch(inputs=[p[:16] for p in workload.prompts[:4]], generation_config=config)  # warm-up
    _sync(device)
    start = time.perf_counter()
    results = hf.generate_batch(inputs=workload.prompts, generation_config=config)
    _sync(device)
    elapsed = time.perf_counter() - start
    errors = [r.error for r in results.values() if r.error is not None]
    if errors or len(results) != len(workload.prompts):
        raise RuntimeError(f"{len(errors)} of {len(workload.prompts)} requests failed: {errors[:1]}")
    produced = sum(len(r.generated_tokens) for r in results.values())
    # Credited only with the tokens the workload asked for (all of them when lengths are equal).
    useful = sum(min(len(r.generated_tokens), max_new) for r in results.values())
    if len(set(workload.output_lens)) > 1:
        useful = min(useful, workload.num_output_tokens)
    return {
        "system": "hf_generate_batch",
        "attn_implementation": getattr(hf.config, "_attn_implementation", None),
        "seconds": elapsed,
        "output_tokens": useful,
        "generated_tokens": produced,
        "requests_per_s": len(results) / elapsed,
        "total_tokens_per_s": (workload.num_prompt_tokens + useful) / elapsed,
        "output_tokens_per_s": useful / elapsed,
    }


def run_peers(
    model: str | None,
    workload: Workload,
    dtype: torch.dtype,
    device: torch.device,
    batch_size: int,
    which: list[str],
) -> dict[str, Any]:
    """Each peer in ``which`` (``generate``, ``generate_batch``); a peer that fails records its error."""
    results: dict[str, Any] = {}
    hf = None
    try:
        hf = load_hf_model(model, dtype, device, attn="sdpa")
        if "generate" in which:
            try:
                results["hf_generate_padded"] = run_hf_generate(hf, workload, batch_size, device)
            except Exception as e:  # a peer's failure is a result too, not the end of the run
                results["hf_generate_padded"] = {"error": f"{type(e).__name__}: {e}"}
        if "generate_batch" in which:
            try:
                hf.set_attn_implementation("paged|sdpa")
                results["hf_generate_batch"] = run_hf_generate_batch(hf, workload, device)
            except Exception as e:
                results["hf_generate_batch"] = {"error": f"{type(e).__name__}: {e}"}
    finally:
        del hf
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results
