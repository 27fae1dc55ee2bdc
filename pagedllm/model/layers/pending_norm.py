"""An RMSNorm handed from the linear layer that produces its input to the linear layer that reads its output.

A decoder layer's norms sit between two linear layers: ``o_proj -> add + norm -> gate_up`` and
``down -> add + norm -> next qkv``. A norm needs whole rows, but a linear's programs each own a tile of
features, so on its own the norm is a kernel of its own: on the Llama-3.2-1B, 33 launches a decode step
that each wait for the linear before and hold up the one after (session 12: dropping them all took 4.6%
off the step at 64 rows). Instead, for the few rows of a decode step, the skinny linears split 31 of them
(all but the first layer's input norm and the final norm, which feeds the LM head):

- the producer's epilogue adds the residual (``h = y + residual``, written back to the residual stream),
  stores ``h * weight`` (the norm's weight applied, its scale not yet), and each tile's sum of ``h^2``
  over its features;
- the consumer multiplies ``h * weight`` by its own weights as it would the norm's output, and scales
  each row of the product by ``1 / rms(h)``, from the partial sums: ``norm(h) W^T`` is
  ``(h * weight) W^T / rms(h)``, since the scale is one number a row.

This module only holds what passes between the two (no triton import): ``skinny_linear`` computes both
sides, and ``materialize`` serves a consumer that cannot take the hand-over.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, slots=True)
class PendingNorm:
    """``RMSNorm(h)`` not yet scaled: ``weighted`` is ``h * weight`` rounded to the model dtype and
    ``sumsq_parts[p, i]`` the sum of ``h[i, j]^2`` (float32) over the features ``j`` of the producer's
    tile ``p``."""

    weighted: torch.Tensor  # [rows, features]
    sumsq_parts: torch.Tensor  # [parts, rows] float32
    eps: float

    def inv_rms(self) -> torch.Tensor:  # [rows] float32
        return torch.rsqrt(self.sumsq_parts.sum(0) / self.weighted.shape[-1] + self.eps)

    def materialize(self) -> torch.Tensor:
        """The norm's output, for a consumer that cannot take the hand-over (torch ops: a few launches).
        NOTE: it rounds once (``h * weight``, then the scale) where ``RMSNorm`` rounds after the scale and
        again after the weight; the two differ in the last bit of some elements."""
        return (self.weighted.float() * self.inv_rms()[:, None]).to(self.weighted.dtype)


def input_rows(x: torch.Tensor | PendingNorm) -> torch.Tensor:
    """The rows a linear layer multiplies: ``x`` itself, or a hand-over's ``weighted`` rows."""
    return x.weighted if isinstance(x, PendingNorm) else x
