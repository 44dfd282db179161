"""Factorised readout (Klindt et al. 2017): a free spatial mask and a channel weighting per neuron."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataShapeError
from openretina.modules.layers.regularizers import FlatLaplaceL23dnorm
from openretina.modules.readout.base import Readout, Reduction

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["FactorizedReadout", "KlindtReadoutWrapper3D"]

WeightsConstraint = Literal["abs", "norm", "absnorm"] | None
MaskConstraint = Literal["abs"] | None
_NORM_EPS = 1e-5


def _centre_crop(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop (..., H0, W0) to the central (..., height, width)."""
    top = (masks.shape[-2] - height) // 2
    left = (masks.shape[-1] - width) // 2
    return masks[..., top : top + height, left : left + width]


class FactorizedReadout(Readout):
    """Per-neuron free spatial mask and channel weights: ``r = softplus(Σ_c w[c,n] Σ_p x[c,p] m[p,n] + b[n])``.

    Input: (batch, channels, time, height, width) core features; (height, width) must equal ``mask_size``.
    Output: (batch, time, neurons).

    Constraints (``weights_constraint``: ``"abs"``, ``"norm"`` — each neuron's channel weights divided by
    ``sqrt(Σ_c w² + 1e-5)`` —, ``"absnorm"``; ``mask_constraint``: ``"abs"``) are applied functionally in
    ``forward`` and in :meth:`regularizer`; stored parameters change only through :meth:`apply_constraints`.
    For given parameter values the outputs equal the reference's, which modified the parameters in place.

    ``regularizer(reduction="mean")`` divides only the Laplace term by 3 and keeps the L1 terms as neuron means of
    sums: this reference quirk is kept so that configurations tuned for it behave the same.
    """

    bias: torch.Tensor

    def __init__(
        self,
        in_shape: Sequence[int],
        outdims: int,
        mask_l1_reg: float,
        weights_l1_reg: float,
        laplace_mask_reg: float,
        mask_size: int | Sequence[int],
        readout_bias: bool = False,
        weights_constraint: WeightsConstraint = None,
        mask_constraint: MaskConstraint = None,
        init_mask: torch.Tensor | None = None,
        init_weights: torch.Tensor | None = None,
        init_scales: Sequence[Sequence[float]] | None = None,
        mean_activity: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if weights_constraint not in (None, "abs", "norm", "absnorm"):
            raise ValueError(
                f"weights_constraint must be None, 'abs', 'norm' or 'absnorm', got {weights_constraint!r}."
            )
        if mask_constraint not in (None, "abs"):
            raise ValueError(f"mask_constraint must be None or 'abs', got {mask_constraint!r}.")
        channels = int(in_shape[0])
        height, width = (mask_size, mask_size) if isinstance(mask_size, int) else (int(s) for s in mask_size)
        self.in_shape = tuple(int(s) for s in in_shape)
        self.outdims = int(outdims)
        self.mask_size = (height, width)
        self.reg = [mask_l1_reg, weights_l1_reg, laplace_mask_reg]
        self.readout_bias = readout_bias
        self.weights_constraint = weights_constraint
        self.mask_constraint = mask_constraint
        self._input_weights_regularizer_spatial = FlatLaplaceL23dnorm(padding=0)

        if init_mask is not None:
            masks = _centre_crop(torch.as_tensor(init_mask, dtype=torch.float32), height, width)
            if masks.shape[0] != self.outdims or masks.shape[-2:] != (height, width):
                raise DataShapeError(
                    f"FactorizedReadout: init_mask cropped to {tuple(masks.shape)}; expected "
                    f"({self.outdims}, 1, {height}, {width}) (neurons, 1, height, width)."
                )
            self.mask_weights = nn.Parameter(masks.reshape(self.outdims, height * width).T.contiguous())
        elif init_scales is not None:
            mean, std = init_scales[0]
            self.mask_weights = nn.Parameter(torch.empty(height * width, self.outdims).normal_(mean, std))
        else:
            raise ValueError("FactorizedReadout: pass either init_mask or init_scales to initialise the mask.")

        if init_weights is not None:
            weights = torch.as_tensor(init_weights, dtype=torch.float32).reshape(channels, self.outdims)
            self.feature_weights = nn.Parameter(weights.clone())
        elif init_scales is not None:
            mean, std = init_scales[1]
            self.feature_weights = nn.Parameter(torch.empty(channels, self.outdims).normal_(mean, std))
        else:
            raise ValueError("FactorizedReadout: pass either init_weights or init_scales to initialise the weights.")

        if readout_bias:
            self.bias = nn.Parameter(torch.zeros(self.outdims))
        else:
            self.register_buffer("bias", torch.zeros(self.outdims))
        self.initialize(mean_activity)

    def initialize(self, mean_activity: torch.Tensor | None = None) -> None:
        """Copy ``mean_activity`` into the bias when given (otherwise the bias keeps its value)."""
        if mean_activity is not None:
            self.initialize_bias(mean_activity)

    @property
    def features(self) -> torch.Tensor:
        """Channel weights (channels, neurons), as stored."""
        return self.feature_weights

    def constrained_mask(self) -> torch.Tensor:
        """Spatial masks after ``mask_constraint``. Output: (height·width, neurons)."""
        return self.mask_weights.abs() if self.mask_constraint == "abs" else self.mask_weights

    def constrained_weights(self) -> torch.Tensor:
        """Channel weights after ``weights_constraint``. Output: (channels, neurons)."""
        weights: torch.Tensor = self.feature_weights
        if self.weights_constraint in ("abs", "absnorm"):
            weights = weights.abs()
        if self.weights_constraint in ("norm", "absnorm"):
            weights = weights / torch.sqrt(weights.pow(2).sum(dim=0, keepdim=True) + _NORM_EPS)
        return weights

    def apply_constraints(self) -> None:
        """Replace the stored mask and weights by their constrained values (call after an optimiser step)."""
        with torch.no_grad():
            self.mask_weights.copy_(self.constrained_mask())
            self.feature_weights.copy_(self.constrained_weights())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input: (batch, channels, time, height, width). Output: (batch, time, neurons)."""
        channels = self.feature_weights.shape[0]
        if x.dim() != 5 or x.shape[1] != channels or tuple(x.shape[3:]) != self.mask_size:
            raise DataShapeError(
                f"FactorizedReadout: expected core features (batch, {channels}, time, {self.mask_size[0]}, "
                f"{self.mask_size[1]}), got {tuple(x.shape)}. The mask size must equal the core output's spatial size."
            )
        pooled = torch.einsum("bctp,pn->btcn", x.flatten(start_dim=3), self.constrained_mask())
        out = torch.einsum("btcn,cn->btn", pooled, self.constrained_weights())
        if self.readout_bias:
            out = out + self.bias
        return F.softplus(out)

    def regularizer(self, reduction: Reduction = None) -> torch.Tensor:
        """Mask L1 + weight L1 (each a neuron mean of per-neuron sums) + spatial Laplace smoothness of the masks."""
        mask = self.constrained_mask()
        mask_penalty = self.reg[0] * mask.abs().sum(dim=0).mean()
        weights_penalty = self.reg[1] * self.constrained_weights().abs().sum(dim=0).mean()
        height, width = self.mask_size
        masks_as_kernels = mask.T.reshape(self.outdims, 1, 1, height, width)
        laplace_penalty = self.reg[2] * self._input_weights_regularizer_spatial(masks_as_kernels, avg=False)
        if reduction == "mean":
            laplace_penalty = laplace_penalty / 3
        return mask_penalty + weights_penalty + laplace_penalty

    def number_of_neurons(self) -> int:
        """Number of neurons (``outdims``)."""
        return self.outdims

    def _plot_weight_for_neuron(self, neuron_id: int, axes: Sequence[Axes], add_titles: bool) -> None:
        mask = self.constrained_mask()[:, neuron_id].reshape(self.mask_size).detach().cpu().numpy()
        axes[0].imshow(mask, cmap="RdBu_r")
        weights = self.constrained_weights()[:, neuron_id].detach().cpu().numpy()
        axes[1].bar(range(len(weights)), weights)
        if add_titles:
            axes[0].set_title("Spatial mask")
            axes[1].set_title("Feature weights")


class KlindtReadoutWrapper3D(FactorizedReadout):
    """Reference name of :class:`FactorizedReadout` (identical behaviour)."""
