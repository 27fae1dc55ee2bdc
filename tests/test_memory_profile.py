"""The profiling step that sizes the KV cache on a GPU (``worker/memory_profile.py``): its inputs."""

from __future__ import annotations

import torch

from pagedllm.worker.memory_profile import _profile_inputs


def test_profile_token_ids_stay_inside_a_tiny_vocabulary():
    # Found in review: ids up to 99 tripped the embedding's device-side assert on a 16-token model,
    # which took the whole process down at start-up on CUDA.
    input_ids, positions, _, logits_indices, _ = _profile_inputs(
        num_tokens=512, num_seqs=8, block_size=16, vocab_size=16, device=torch.device("cpu")
    )
    assert input_ids.shape == (512,) and int(input_ids.max()) < 16
    assert positions.shape == (512,) and logits_indices.shape == (8,)
