"""Layers that reduce the channel dimension of a stimulus or feature map."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from openretina.errors import DataShapeError

__all__ = ["WeightedChannelSumLayer"]


class WeightedChannelSumLayer(nn.Module):
    """Collapses the channels into one by a weighted sum (e.g. green + UV → luminance).

    Input: (batch, channels, time, height, width). Output: (batch, 1, time, height, width); a single-channel
    input is returned unchanged. Parameter ``channel_weights`` (C,) is frozen unless ``trainable``.
    """

    def __init__(self, init_channel_weights: Sequence[float], trainable: bool = False) -> None:
        super().__init__()
        weights = torch.tensor([float(w) for w in init_channel_weights], dtype=torch.float32)
        if weights.dim() != 1 or weights.numel() == 0:
            raise ValueError(
                f"WeightedChannelSumLayer: init_channel_weights must be a non-empty sequence of numbers, "
                f"got {init_channel_weights!r}."
            )
        # A Parameter even when frozen so the weights are saved in the state_dict.
        self.channel_weights = nn.Parameter(weights, requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Weighted sum over dim 1 of ``x`` (B, C, T, H, W) → (B, 1, T, H, W)."""
        if x.dim() != 5:
            raise DataShapeError(
                f"WeightedChannelSumLayer: expected a 5-D input (batch, channels, time, height, width), "
                f"got shape {tuple(x.shape)}."
            )
        if x.shape[1] == 1:
            return x
        if x.shape[1] != self.channel_weights.numel():
            raise DataShapeError(
                f"WeightedChannelSumLayer: input has {x.shape[1]} channels but {self.channel_weights.numel()} "
                "channel weights were given. Give one weight per stimulus channel."
            )
        weights = self.channel_weights.to(dtype=x.dtype).view(1, -1, 1, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
