"""Squared-error loss on time-aligned responses."""

from __future__ import annotations

import torch
from torch import nn

from openretina.modules.losses.common import align_target, resolve_reduction, to_loss_dtype

__all__ = ["MSE3d"]


class MSE3d(nn.Module):
    """Squared error ``(ŷ - y)²`` summed (default, as the reference) or averaged over all elements.

    Input: output (batch, time_out, neurons), target (batch, time_target, neurons), time_target ≥ time_out; the
    first ``time_target - time_out`` target frames are dropped. Output: scalar.
    """

    def __init__(self, reduction: str = "sum") -> None:
        super().__init__()
        self.reduction = resolve_reduction(False, reduction, type(self).__name__)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Reduced squared error."""
        aligned = to_loss_dtype(align_target(output, target, type(self).__name__))
        squared = (to_loss_dtype(output) - aligned).pow(2)
        return squared.mean() if self.reduction == "mean" else squared.sum()
