"""Session 11: `pagedllm bench decode` with the LM head optionally on the Triton skinny linear.

``S11_LM_HEAD_SKINNY=1`` routes ``ParallelLMHead`` through ``linear._linear`` (the skinny kernel at <= 64
rows, cuBLAS above); the rest of the command line is ``pagedllm bench decode``'s. The prefetch settings
are the environment variables of ``skinny_linear`` (PAGEDLLM_SKINNY_PREFETCH, PAGEDLLM_SKINNY_PREFETCH_MB)
and ``decode`` (PAGEDLLM_KV_PREFETCH).
"""

import os
import sys

import torch

from pagedllm.cli import main
from pagedllm.model.layers import linear, vocab_embedding

if os.environ.get("S11_LM_HEAD_SKINNY") == "1":

    def _forward(self: vocab_embedding.ParallelLMHead, hidden: torch.Tensor) -> torch.Tensor:
        return linear._linear(hidden, self.weight, None)

    vocab_embedding.ParallelLMHead.forward = _forward  # type: ignore[method-assign]

sys.exit(main(["bench", "decode", *sys.argv[1:]]))
