"""A linear temporal filter bank: the linear stage of a linear-nonlinear (LN) model of many neurons.

The reference's LN-Poisson models pair a spatial LN readout with an identity core, so each predicted response
depends on one frame only. Retinal ganglion cells integrate over ~100-300 ms, so such a baseline understates
what a linear model can do. With this core in front of :class:`~openretina.modules.readout.LNPReadout`, neuron
``n`` responds with ``f(Σ_k Σ_{y,x} w[n, k, y, x] (h_k * s)(t, y, x))``: a space-time-colour filter of rank
``n_filters`` (temporal filters ``h_k`` shared by all neurons, spatial weights per neuron), then a static
nonlinearity. That is an LN model, fitted end to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from openretina.modules.core.base_core import Core
from openretina.modules.layers.regularizers import TimeLaplaceL23dnorm

__all__ = ["LinearTemporalCore"]


class LinearTemporalCore(Core):
    """``n_filters`` causal temporal filters over all stimulus channels, applied at every pixel; no nonlinearity.

    Args:
        channels: ``(stimulus channels, n_filters)``; ``UnifiedCoreReadout`` fills it from ``hidden_channels``.
        temporal_kernel_size: filter length in frames; the core consumes ``temporal_kernel_size - 1`` frames.
        gamma_temporal: weight of the temporal smoothness penalty (squared 1-D Laplacian of the filters,
            normalised by their energy).

    Input: (batch, channels[0], time, height, width).
    Output: (batch, channels[1], time - temporal_kernel_size + 1, height, width).
    """

    def __init__(
        self,
        channels: Sequence[int],
        temporal_kernel_size: int = 31,
        gamma_temporal: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if len(channels) != 2 or min(channels) < 1:
            raise ValueError(
                f"LinearTemporalCore: channels must be (stimulus channels, n_filters), both >= 1, got {channels}; "
                "set hidden_channels to one value, the number of filters."
            )
        if temporal_kernel_size < 1:
            raise ValueError(f"LinearTemporalCore: temporal_kernel_size must be >= 1, got {temporal_kernel_size}.")
        self.in_channels, self.n_filters = (int(c) for c in channels)
        self.temporal_kernel_size = int(temporal_kernel_size)
        self.gamma_temporal = gamma_temporal
        self.filters = nn.Conv3d(self.in_channels, self.n_filters, (self.temporal_kernel_size, 1, 1), bias=False)
        self._smoothness = TimeLaplaceL23dnorm(padding=0, persistent_buffer=False)
        self.initialize()

    def initialize(self) -> None:
        """Xavier-normal filters."""
        nn.init.xavier_normal_(self.filters.weight)

    def forward(self, x: torch.Tensor, data_key: str | None = None, **kwargs: Any) -> torch.Tensor:
        """Input: (batch, channels, time, height, width). Output: (batch, n_filters, time', height, width)."""
        self.check_input(x, self.in_channels)
        return self.filters(x)

    def number_of_cut_frames(self) -> int:
        """``temporal_kernel_size - 1``: the filters are causal and unpadded."""
        return self.temporal_kernel_size - 1

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """(n_filters, T - cut, H, W) for input (C, T, H, W)."""
        _, time, height, width = (int(v) for v in input_shape)
        return (self.n_filters, time - self.number_of_cut_frames(), height, width)

    def regularizer(self) -> torch.Tensor:
        """``gamma_temporal`` times the temporal roughness of the filters."""
        if self.temporal_kernel_size < 3:  # a 1-D Laplacian needs three taps
            return super().regularizer()
        return self.gamma_temporal * self._smoothness(self.filters.weight)

    def temporal_filters(self) -> torch.Tensor:
        """The filters, oldest frame first. Output: (n_filters, channels, temporal_kernel_size)."""
        return self.filters.weight.detach()[:, :, :, 0, 0]

    def save_weight_visualizations(self, folder_path: str, file_format: str = "jpg", state_suffix: str = "") -> None:
        """Plot every filter (one line per stimulus channel) into ``temporal_filters{state_suffix}.{file_format}``."""
        import matplotlib.pyplot as plt

        filters = self.temporal_filters().cpu().numpy()
        lags = range(-self.temporal_kernel_size + 1, 1)
        figure, axes = plt.subplots(1, self.n_filters, figsize=(2.5 * self.n_filters, 2.2), squeeze=False)
        for k, axis in enumerate(axes[0]):
            for channel, trace in enumerate(filters[k]):
                axis.plot(lags, trace, label=f"channel {channel}")
            axis.axhline(0.0, color="grey", linewidth=0.5)
            axis.set_title(f"filter {k}")
            axis.set_xlabel("frame relative to response")
        axes[0][0].legend(fontsize="small")
        figure.tight_layout()
        Path(folder_path).mkdir(parents=True, exist_ok=True)
        figure.savefig(Path(folder_path) / f"temporal_filters{state_suffix}.{file_format}")
        plt.close(figure)
