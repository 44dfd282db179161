"""Gaussian mask readout: a per-neuron spatial Gaussian pooling window followed by a per-neuron channel weighting.

This is the default readout of the published core-readout models (Höfling et al. 2024). The grid, the mask
formula and the parameter names reproduce the reference exactly, so published checkpoints load unchanged and give
the same outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataShapeError
from openretina.modules.layers.frozen_cache import cached_while_frozen
from openretina.modules.readout.base import Readout, Reduction

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["GaussianMaskReadout", "gaussian_mask_grid"]

# Squared Mahalanobis distances are capped here, so every pixel keeps a weight of at least exp(-10) before the
# per-neuron normalisation (reference behaviour, kept because it changes outputs).
_MAX_SCALED_SQUARED_DISTANCE = 20.0
_LOG_VAR_CLAMP = 20.0
_VARIANCE_EPS = 1e-8


def gaussian_mask_grid(height: int, width: int) -> torch.Tensor:
    """Normalised pixel coordinates of a ``height`` × ``width`` feature map.

    Output: (height, width, 2); ``[..., 0]`` runs along the height axis from ``-height/m`` to ``height/m`` and
    ``[..., 1]`` along the width axis from ``-width/m`` to ``width/m``, with ``m = max(height, width)``.
    (The opposite of ``grid_sample``'s x/y order used by :class:`PointGaussianReadout`.)
    """
    longest = max(height, width)
    along_height = torch.linspace(-height / longest, height / longest, height)
    along_width = torch.linspace(-width / longest, width / longest, width)
    return torch.stack(torch.meshgrid(along_height, along_width, indexing="ij"), dim=-1)


class GaussianMaskReadout(Readout):
    """Per-neuron spatial Gaussian mask over core features, then a linear map over channels.

    For neuron ``n``: ``r[b, t, n] = f(scale[n] * Σ_c features[c, n] Σ_{y,x} x[b, c, t, y, x] mask[n, y, x] + bias[n])``
    with ``f`` = softplus by default. The mask is an isotropic Gaussian centred at ``mask_mean * gaussian_mean_scale``
    with variance ``exp(mask_log_var * gaussian_var_scale)``, normalised to sum 1 per neuron.

    Input: (batch, channels, time, height, width) core features.
    Output: (batch, time, neurons).

    ``in_shape`` is ``(channels, time, height, width)``; the reference calls the last two ``w, h`` (swapped names,
    same order). ``mask_mean[:, 0]`` moves the mask along the height axis and ``mask_mean[:, 1]`` along the width
    axis — the opposite convention to :class:`PointGaussianReadout`.

    Differences from the reference, none of which changes outputs for given parameter values:

    * ``positive=True`` clamps the feature weights to ≥ 0 functionally inside ``forward``; the stored parameter is
      never modified there. Call :meth:`apply_constraints` after each optimiser step to also project the stored
      weights (this reproduces the reference's training behaviour).
    * the repr reports "with bias" when the bias is trainable.

    Kept on purpose (they change outputs or loss values): pixels keep a floor weight of ``exp(-10)`` before
    normalisation, and the regulariser uses the unclamped ``exp(mask_log_var * gaussian_var_scale)``, which keeps
    pulling very broad masks back where the clamped mask formula has no gradient. A non-trainable bias (``bias=False``)
    still receives ``mean_activity`` as a fixed offset.
    """

    grid: torch.Tensor

    def __init__(
        self,
        in_shape: Sequence[int],
        outdims: int,
        mean_activity: torch.Tensor | None = None,
        gaussian_mean_scale: float = 1.0,
        gaussian_var_scale: float = 1.0,
        positive: bool = False,
        scale: bool = False,
        bias: bool = True,
        nonlinearity_function: Callable[[torch.Tensor], torch.Tensor] | None = F.softplus,
        mask_l1_reg: float = 1.0,
        feature_weights_l1_reg: float = 1.0,
    ) -> None:
        super().__init__()
        if len(in_shape) != 4:
            raise DataShapeError(
                f"GaussianMaskReadout: in_shape must be (channels, time, height, width), got {tuple(in_shape)}."
            )
        channels, _, height, width = (int(s) for s in in_shape)
        self.in_shape = (channels, int(in_shape[1]), height, width)
        self.outdims = int(outdims)
        self.gaussian_mean_scale = gaussian_mean_scale
        self.gaussian_var_scale = gaussian_var_scale
        self.positive = positive
        self.nonlinearity_function = nonlinearity_function
        self.mask_l1_reg = mask_l1_reg
        self.feature_weights_l1_reg = feature_weights_l1_reg

        self.mask_mean = nn.Parameter(torch.zeros(self.outdims, 2))
        self.mask_log_var = nn.Parameter(torch.zeros(self.outdims))
        self.features = nn.Parameter(torch.empty(1, channels, 1, self.outdims).normal_(1.0 / channels, 0.01))
        if scale:
            self.scale_param = nn.Parameter(torch.empty(self.outdims).normal_(1.0, 0.01))
        else:
            self.register_buffer("scale_param", torch.ones(self.outdims))
        if bias:
            self.bias = nn.Parameter(torch.zeros(self.outdims))
        else:
            self.register_buffer("bias", torch.zeros(self.outdims))
        self.register_buffer("grid", gaussian_mask_grid(height, width).expand(self.outdims, -1, -1, -1).clone())
        self.initialize(mean_activity)

    def initialize(self, mean_activity: torch.Tensor | None = None) -> None:
        """Set the bias from ``mean_activity`` (the other parameters keep their construction-time values)."""
        self.initialize_bias(mean_activity)

    def get_mask(self) -> torch.Tensor:
        """Normalised Gaussian masks. Output: (neurons, height, width), each summing to 1."""
        variance = torch.exp(torch.clamp(self.mask_log_var * self.gaussian_var_scale, -_LOG_VAR_CLAMP, _LOG_VAR_CLAMP))
        centre = (self.mask_mean * self.gaussian_mean_scale)[:, None, None, :]
        squared_distance = (self.grid - centre).pow(2).sum(dim=-1)
        scaled = squared_distance / (variance[:, None, None] + _VARIANCE_EPS)
        unnormalised = torch.exp(-0.5 * torch.clamp(scaled, max=_MAX_SCALED_SQUARED_DISTANCE))
        return torch.nan_to_num(unnormalised / unnormalised.sum(dim=(1, 2), keepdim=True))

    @property
    def masks(self) -> torch.Tensor:
        """Normalised masks in the reference layout (height, width, neurons); computed once while frozen."""
        sources = (self.mask_log_var, self.mask_mean, self.grid)
        return cached_while_frozen(self, "masks", sources, lambda: self.get_mask().permute(1, 2, 0))

    def _feature_weights(self) -> torch.Tensor:
        """Feature weights as used in ``forward``: clamped to ≥ 0 when ``positive`` (no in-place change)."""
        return self.features.clamp(min=0.0) if self.positive else self.features

    def _check_input(self, x: torch.Tensor) -> None:
        channels, _, height, width = self.in_shape
        if x.dim() != 5 or x.shape[1] != channels or tuple(x.shape[3:]) != (height, width):
            raise DataShapeError(
                f"GaussianMaskReadout: expected core features (batch, {channels}, time, {height}, {width}), "
                f"got {tuple(x.shape)}. Check that the readout's in_shape matches the core's output shape."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input: (batch, channels, time, height, width). Output: (batch, time, neurons)."""
        self._check_input(x)
        pooled = torch.einsum("bctyx,yxn->bctn", x, self.masks)
        y = (pooled * self._feature_weights()).sum(dim=1)
        y = y * self.scale_param + self.bias
        return y if self.nonlinearity_function is None else self.nonlinearity_function(y)

    def apply_constraints(self) -> None:
        """Clamp the stored feature weights to ≥ 0 in place when ``positive`` (call after an optimiser step)."""
        if self.positive:
            with torch.no_grad():
                self.features.clamp_(min=0.0)

    def regularizer(self, reduction: Reduction = "sum") -> torch.Tensor:
        """``mask_l1_reg·[agg(exp(log_var·s_v)) + agg((mean·s_m)²)] + feature_weights_l1_reg·agg(|features|)``.

        ``agg`` is the mean over elements when ``reduction == "mean"``, else the sum.
        """
        aggregate = torch.mean if reduction == "mean" else torch.sum
        mask_penalty = aggregate(torch.exp(self.mask_log_var * self.gaussian_var_scale)) + aggregate(
            (self.mask_mean * self.gaussian_mean_scale).pow(2)
        )
        return self.mask_l1_reg * mask_penalty + self.feature_weights_l1_reg * aggregate(self.features.abs())

    def number_of_neurons(self) -> int:
        """Number of neurons (``outdims``)."""
        return self.outdims

    def _plot_weight_for_neuron(self, neuron_id: int, axes: Sequence[Axes], add_titles: bool) -> None:
        mask = self.get_mask()[neuron_id].detach().cpu().numpy()
        axes[0].imshow(mask, cmap="gray")
        weights = self._feature_weights()[0, :, 0, neuron_id].detach().cpu().numpy()
        axes[1].bar(range(len(weights)), weights)
        if add_titles:
            axes[0].set_title("Spatial mask")
            axes[1].set_title("Feature weights")

    def extra_repr(self) -> str:
        channels, _, height, width = self.in_shape
        trainable_bias = isinstance(self.bias, nn.Parameter)
        return (
            f"in_shape=({channels}, t, {height}, {width}), outdims={self.outdims}, "
            f"{'with' if trainable_bias else 'without'} trainable bias, positive={self.positive}"
        )
