"""Per-channel learnable offsets and gains, and feature-wise linear modulation (FiLM)."""

from __future__ import annotations

import torch
from torch import nn

from openretina.errors import DataShapeError

__all__ = ["Bias3DLayer", "FiLM", "Scale2DLayer", "Scale3DLayer"]


def _check_channels(x: torch.Tensor, rank: int, channels: int, layer: str) -> None:
    if x.dim() != rank or x.shape[1] != channels:
        raise DataShapeError(
            f"{layer}: expected a {rank}-D input with {channels} channels in dim 1, got shape {tuple(x.shape)}."
        )


class Bias3DLayer(nn.Module):
    """Adds a learnable offset per channel.

    Input: (batch, channels, time, height, width). Output: same shape. Parameter ``bias``: (1, C, 1, 1, 1).
    """

    def __init__(self, channels: int, initial: float = 0.0) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.full((1, channels, 1, 1, 1), float(initial)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + bias``."""
        _check_channels(x, 5, self.bias.shape[1], "Bias3DLayer")
        return x + self.bias


class Scale2DLayer(nn.Module):
    """Multiplies each channel by a learnable gain.

    Input: (batch, channels, height, width). Output: same shape. Parameter ``scale``: (1, C, 1, 1).
    """

    def __init__(self, num_channels: int, initial: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1, num_channels, 1, 1), float(initial)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x * scale``."""
        _check_channels(x, 4, self.scale.shape[1], "Scale2DLayer")
        return x * self.scale


class Scale3DLayer(nn.Module):
    """Multiplies each channel by a learnable gain.

    Input: (batch, channels, time, height, width). Output: same shape. Parameter ``scale``: (1, C, 1, 1, 1).
    """

    def __init__(self, num_channels: int, initial: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1, num_channels, 1, 1, 1), float(initial)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x * scale``."""
        _check_channels(x, 5, self.scale.shape[1], "Scale3DLayer")
        return x * self.scale


class FiLM(nn.Module):
    """Feature-wise linear modulation: ``gamma(cond) * x + beta(cond)`` per channel.

    Starts as the identity (gamma ≈ 1, beta ≈ 0) so adding it to a trained network changes little.

    Input: ``x`` (batch, num_features, ...) of any rank ≥ 2 and ``cond`` (batch, cond_dim).
    Output: same shape as ``x``.
    """

    def __init__(self, num_features: int, cond_dim: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.cond_dim = cond_dim
        self.fc_gamma = nn.Linear(cond_dim, num_features)
        self.fc_beta = nn.Linear(cond_dim, num_features)
        nn.init.normal_(self.fc_gamma.weight, mean=0.0, std=0.01)
        nn.init.ones_(self.fc_gamma.bias)
        nn.init.normal_(self.fc_beta.weight, mean=0.0, std=0.01)
        nn.init.zeros_(self.fc_beta.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Modulate ``x`` (B, C, ...) with the conditioning vector ``cond`` (B, cond_dim)."""
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise DataShapeError(
                f"FiLM: expected x with {self.num_features} channels in dim 1, got shape {tuple(x.shape)}."
            )
        if cond.dim() != 2 or cond.shape != (x.shape[0], self.cond_dim):
            raise DataShapeError(
                f"FiLM: expected cond of shape ({x.shape[0]}, {self.cond_dim}) (batch, cond_dim), "
                f"got {tuple(cond.shape)}."
            )
        broadcast_shape = (x.shape[0], self.num_features) + (1,) * (x.dim() - 2)
        gamma = self.fc_gamma(cond).view(broadcast_shape)
        beta = self.fc_beta(cond).view(broadcast_shape)
        return gamma * x + beta
