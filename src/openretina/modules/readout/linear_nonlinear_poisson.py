"""Linear-nonlinear readout: one full-field spatial filter per neuron followed by a pointwise nonlinearity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataShapeError
from openretina.modules.layers import regularizers
from openretina.modules.readout.base import Readout, Reduction

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.axes import Axes

__all__ = ["LNPReadout"]


def _resolve_nonlinearity(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name == "exp":
        return torch.exp
    function = getattr(F, name, None)
    if not callable(function):
        raise ValueError(f"LNPReadout: unknown nonlinearity {name!r}; use 'exp' or a torch.nn.functional name.")
    return function


class LNPReadout(Readout):
    """Spatial linear filter per neuron (over all channels and the whole feature map), then a nonlinearity.

    ``r[b, t, n] = f(Σ_{c,y,x} W[n, c, y, x] x[b, c, t, y, x] (+ bias[n]))`` with ``f = exp`` by default.

    Input: (batch, channels, time, height, width) core features; (height, width) must equal ``in_shape[2:]``.
    Output: (batch, time, neurons).

    There is no temporal filter (as in the reference): with an identity core this is an instantaneous spatial LN
    model; temporal integration must come from the core. ``regularizer`` combines a smoothness penalty on the
    spatial filters (``smooth_regularizer``, a class in :mod:`openretina.modules.layers.regularizers`) and an L1
    penalty (mean absolute weight).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        outdims: int,
        mean_activity: torch.Tensor | None = None,
        smooth_weight: float = 0.0,
        sparse_weight: float = 0.0,
        smooth_regularizer: str = "LaplaceL2norm",
        laplace_padding: int | None = None,
        nonlinearity: str = "exp",
        bias: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if len(in_shape) != 4:
            raise DataShapeError(
                f"LNPReadout: in_shape must be (channels, time, height, width), got {tuple(in_shape)}."
            )
        channels, _, height, width = (int(s) for s in in_shape)
        self.in_shape = (channels, int(in_shape[1]), height, width)
        self.outdims = int(outdims)
        self.smooth_weight = smooth_weight
        self.sparse_weight = sparse_weight
        self.inner_product_kernel = nn.Conv3d(channels, self.outdims, kernel_size=(1, height, width), bias=bias)
        nn.init.xavier_normal_(self.inner_product_kernel.weight)
        regularizer_cls = getattr(regularizers, smooth_regularizer, None)
        if not isinstance(regularizer_cls, type):
            raise ValueError(
                f"LNPReadout: unknown smooth_regularizer {smooth_regularizer!r}; use a class name from "
                "openretina.modules.layers.regularizers such as 'LaplaceL2norm' or 'GaussianLaplaceL2'."
            )
        if regularizer_cls is regularizers.GaussianLaplaceL2:
            self._smooth_reg_fn = regularizer_cls(kernel=(height, width), padding=laplace_padding)
        else:
            self._smooth_reg_fn = regularizer_cls(padding=laplace_padding)
        self.nonlinearity_name = nonlinearity
        self.nonlinearity = _resolve_nonlinearity(nonlinearity)
        self.initialize(mean_activity)

    @property
    def bias(self) -> torch.Tensor | None:
        """Per-neuron bias of the filter (None when built with ``bias=False``)."""
        return self.inner_product_kernel.bias

    @property
    def features(self) -> torch.Tensor:
        """Spatial filters. Output: (neurons, channels, 1, height, width)."""
        return self.inner_product_kernel.weight

    def initialize(self, mean_activity: torch.Tensor | None = None) -> None:
        """Copy ``mean_activity`` into the bias when both exist."""
        if mean_activity is not None and self.bias is not None:
            self.initialize_bias(mean_activity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input: (batch, channels, time, height, width). Output: (batch, time, neurons)."""
        channels, _, height, width = self.in_shape
        if x.dim() != 5 or x.shape[1] != channels or tuple(x.shape[3:]) != (height, width):
            raise DataShapeError(
                f"LNPReadout: expected core features (batch, {channels}, time, {height}, {width}), got "
                f"{tuple(x.shape)}. The filter covers the whole feature map, so its size must match exactly."
            )
        response = self.nonlinearity(self.inner_product_kernel(x))  # (batch, neurons, time, 1, 1)
        return response.squeeze(-1).squeeze(-1).transpose(1, 2)

    def laplace(self) -> torch.Tensor:
        """Smoothness penalty of the spatial filters (summed)."""
        return self._smooth_reg_fn(self.inner_product_kernel.weight.squeeze(2))

    def weights_l1(self, average: bool = True) -> torch.Tensor:
        """Mean (or sum) absolute filter weight."""
        weights = self.inner_product_kernel.weight.abs()
        return weights.mean() if average else weights.sum()

    def regularizer(self, reduction: Reduction = None, **kwargs: Any) -> torch.Tensor:
        """``smooth_weight · laplace() + sparse_weight · weights_l1()`` (independent of ``reduction``)."""
        return self.smooth_weight * self.laplace() + self.sparse_weight * self.weights_l1()

    def number_of_neurons(self) -> int:
        """Number of neurons (``outdims``)."""
        return self.outdims

    def _plot_weight_for_neuron(self, neuron_id: int, axes: Sequence[Axes], add_titles: bool) -> None:
        weights = self.inner_product_kernel.weight[neuron_id, :, 0].detach().cpu()  # (channels, height, width)
        limit = float(weights.abs().max())
        axes[0].imshow(weights.sum(dim=0).numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[1].bar(range(weights.shape[0]), weights.flatten(start_dim=1).norm(dim=1).numpy())
        if add_titles:
            axes[0].set_title("Spatial filter (sum over channels)")
            axes[1].set_title("Filter norm per channel")
