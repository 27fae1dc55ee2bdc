"""Random weights for a model: for benchmarks, memory tests and engine tests without a checkpoint."""

from __future__ import annotations

import torch
from torch import nn

from pagedllm.model.layers import RMSNorm


@torch.no_grad()
def initialize_dummy_weights(model: nn.Module, seed: int = 0, std: float = 0.02) -> None:
    """Fills every parameter deterministically from ``seed``: norms 1, biases 0, the rest N(0, std).

    The small std keeps activations in range through many layers, so the model's outputs (though
    meaningless) are finite and its softmaxes are not saturated. Same seed, device and dtype, same weights.
    """
    if not std > 0:
        raise ValueError(f"std={std} must be > 0")
    norm_weights = {id(m.weight) for m in model.modules() if isinstance(m, RMSNorm)}
    generators: dict[torch.device, torch.Generator] = {}
    for name, param in model.named_parameters():
        if id(param) in norm_weights:
            param.fill_(1.0)
        elif name.endswith(".bias"):
            param.zero_()
        else:
            if param.device not in generators:
                generators[param.device] = torch.Generator(device=param.device).manual_seed(seed)
            param.normal_(0.0, std, generator=generators[param.device])
