"""Point Gaussian readout (Lurz et al. 2021): each neuron reads the core features at one learned location.

During training the location is sampled from a learned Gaussian (reparameterisation), in evaluation the mean is
used. Features are read with bilinear interpolation (``torch.nn.functional.grid_sample``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataShapeError
from openretina.modules.readout.base import Readout, Reduction

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["FullGaussian2d", "PointGaussianReadout"]

GaussType = Literal["full", "uncorrelated", "isotropic", "iso"]
_SIGMA_SHAPE_LAST_DIMS = {"full": (2, 2), "uncorrelated": (1, 2), "isotropic": (1, 1)}


def _sharing_index(match_ids: Any) -> tuple[int, torch.Tensor]:
    """Number of distinct ids and, per neuron, the index of its id among the sorted distinct ids."""
    unique_ids, index = np.unique(np.asarray(match_ids), return_inverse=True)
    return len(unique_ids), torch.as_tensor(index.reshape(-1), dtype=torch.long)


def _grid_mean_mlp(
    input_dimensions: int, hidden_layers: int = 1, hidden_features: int = 20, final_tanh: bool = False
) -> nn.Sequential:
    """MLP mapping a neuron's source coordinates to its 2-D readout location."""
    layers: list[nn.Module] = []
    width = input_dimensions
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, hidden_features), nn.ELU()]
        width = hidden_features
    layers.append(nn.Linear(width, 2))
    if final_tanh:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class PointGaussianReadout(Readout):
    """Reads each neuron's features at one (sampled) location, then weights the channels.

    Input: (batch·time, channels, height, width) frames — as the multi-session wrapper passes them — or
    (batch, channels, time, height, width) core features.
    Output: (batch·time, neurons) for 4-D input, (batch, time, neurons) for 5-D input. No output nonlinearity
    (:class:`MultiSampledGaussianReadout` applies one).

    Locations ``mu`` are in ``grid_sample`` coordinates in [-1, 1]: ``mu[..., 0]`` moves along the *width* axis and
    ``mu[..., 1]`` along the *height* axis (the opposite of :class:`GaussianMaskReadout`). ``gauss_type`` sets the
    shape of the location noise: ``"full"`` (2×2 mixing matrix), ``"uncorrelated"`` (one std per axis) or
    ``"isotropic"`` (one std; ``"iso"`` is accepted too). ``mu`` is clamped to [-1, 1] functionally when sampling;
    the stored parameter changes only through :meth:`apply_constraints`.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        outdims: int,
        bias: bool,
        init_mu_range: float = 0.1,
        init_sigma_range: float = 0.15,
        batch_sample: bool = True,
        align_corners: bool = True,
        gauss_type: GaussType = "full",
        grid_mean_predictor: Mapping[str, Any] | None = None,
        shared_features: Mapping[str, Any] | None = None,
        shared_grid: Mapping[str, Any] | None = None,
        init_grid: torch.Tensor | None = None,
        source_grid: Any = None,
        mean_activity: torch.Tensor | None = None,
        gamma_readout: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if not 0.0 < init_mu_range <= 1.0:
            raise ValueError(f"init_mu_range must be in (0, 1], got {init_mu_range}.")
        if init_sigma_range <= 0.0:
            raise ValueError(f"init_sigma_range must be > 0, got {init_sigma_range}.")
        gauss_type = "isotropic" if gauss_type == "iso" else gauss_type
        if gauss_type not in _SIGMA_SHAPE_LAST_DIMS:
            raise ValueError(f"gauss_type must be 'full', 'uncorrelated' or 'isotropic', got {gauss_type!r}.")
        if len(in_shape) != 4:
            raise DataShapeError(
                f"PointGaussianReadout: in_shape must be (channels, time, height, width), got {tuple(in_shape)}."
            )
        self.in_shape = tuple(int(s) for s in in_shape)
        self.outdims = int(outdims)
        self.init_mu_range = init_mu_range
        self.init_sigma_range = init_sigma_range
        self.batch_sample = batch_sample
        self.align_corners = align_corners
        self.gauss_type = gauss_type
        self.gamma_readout = gamma_readout
        self.grid_shape = (1, self.outdims, 1, 2)
        self.init_grid = None if init_grid is None else torch.as_tensor(init_grid, dtype=torch.float32)
        channels = self.in_shape[0]

        self._predicted_grid = grid_mean_predictor is not None
        self._shared_grid = shared_grid is not None
        self._original_grid = True
        self._shared_features = shared_features is not None
        self._original_features = True
        if self._predicted_grid and self._shared_grid:
            raise ValueError("PointGaussianReadout: use either grid_mean_predictor or shared_grid, not both.")

        if grid_mean_predictor is not None:
            if source_grid is None:
                raise ValueError("PointGaussianReadout: grid_mean_predictor needs a source_grid (neurons, dims).")
            self._init_grid_predictor(source_grid, **dict(grid_mean_predictor))
        elif shared_grid is not None:
            n_unique, index = _sharing_index(shared_grid["match_ids"])
            self.register_buffer("grid_sharing_index", index)
            if shared_grid.get("shared_grid") is not None:
                self._original_grid = False
                self._mu = shared_grid["shared_grid"]
                identity = nn.Linear(2, 2)
                with torch.no_grad():
                    identity.weight.copy_(torch.eye(2))
                    identity.bias.zero_()
                self.mu_transform: nn.Module = identity
            else:
                self._mu = nn.Parameter(torch.zeros(1, n_unique, 1, 2))
        else:
            self._mu = nn.Parameter(torch.zeros(*self.grid_shape))

        self.sigma = nn.Parameter(torch.zeros(1, self.outdims, *_SIGMA_SHAPE_LAST_DIMS[gauss_type]))

        if shared_features is not None:
            n_unique, index = _sharing_index(shared_features["match_ids"])
            self.register_buffer("feature_sharing_index", index)
            self.scales = nn.Parameter(torch.ones(1, 1, 1, self.outdims))
            if shared_features.get("shared_features") is not None:
                self._original_features = False
                self._features = shared_features["shared_features"]
            else:
                self._features = nn.Parameter(torch.zeros(1, channels, 1, n_unique))
        else:
            self._features = nn.Parameter(torch.zeros(1, channels, 1, self.outdims))

        if bias:
            self.bias: nn.Parameter | None = nn.Parameter(torch.zeros(self.outdims))
        else:
            self.register_parameter("bias", None)
        self.initialize(mean_activity)

    def _init_grid_predictor(
        self, source_grid: Any, hidden_layers: int = 1, hidden_features: int = 20, final_tanh: bool = False, **_: Any
    ) -> None:
        grid = torch.as_tensor(np.asarray(source_grid), dtype=torch.float32)
        if grid.dim() != 2 or grid.shape[0] != self.outdims:
            raise DataShapeError(
                f"PointGaussianReadout: source_grid has shape {tuple(grid.shape)}, expected ({self.outdims}, dims)."
            )
        grid = grid - grid.mean(dim=0)
        grid = grid / grid.abs().max()
        self.register_buffer("source_grid", grid)
        self.mu_transform = _grid_mean_mlp(grid.shape[1], hidden_layers, hidden_features, final_tanh)

    def initialize(self, mean_activity: torch.Tensor | None = None) -> None:
        """Draw locations, set the noise scale, set features to ``1/channels`` and the bias from ``mean_activity``."""
        with torch.no_grad():
            if not self._predicted_grid and self._original_grid:
                if self.init_grid is not None:
                    self._mu.copy_(self.init_grid.reshape(self._mu.shape))
                else:
                    self._mu.uniform_(-self.init_mu_range, self.init_mu_range)
            if self.gauss_type == "full":
                self.sigma.uniform_(-self.init_sigma_range, self.init_sigma_range)
            else:
                self.sigma.fill_(self.init_sigma_range)
            if self._original_features:
                self._features.fill_(1.0 / self.in_shape[0])
            if self._shared_features:
                self.scales.fill_(1.0)
        if self.bias is not None:
            self.initialize_bias(mean_activity)

    @property
    def features(self) -> torch.Tensor:
        """Channel weights per neuron. Output: (1, channels, 1, neurons)."""
        if self._shared_features:
            return self.scales * self._features[..., self.feature_sharing_index]
        return self._features

    @property
    def mu(self) -> torch.Tensor:
        """Mean readout locations (unclamped). Output: (1, neurons, 1, 2) in ``grid_sample`` (x, y) order."""
        if self._predicted_grid:
            return self.mu_transform(self.source_grid).view(*self.grid_shape)
        if self._shared_grid:
            if self._original_grid:
                return self._mu[:, self.grid_sharing_index, ...]
            transformed = self.mu_transform(self._mu.reshape(-1, 2))
            return transformed[self.grid_sharing_index].view(*self.grid_shape)
        return self._mu

    def sample_grid(self, batch_size: int, sample: bool | None = None) -> torch.Tensor:
        """Readout locations per sample, clamped to [-1, 1]. Output: (batch_size, neurons, 1, 2).

        ``sample`` defaults to ``self.training``; without sampling every sample reads at ``mu``.
        """
        sample = self.training if sample is None else sample
        mu = self.mu.clamp(-1.0, 1.0)
        shape = (batch_size, self.outdims, 1, 2)
        noise = mu.new_empty(shape).normal_() if sample else mu.new_zeros(shape)
        if self.gauss_type == "full":
            offset = torch.einsum("ncd,bnid->bnic", self.sigma[0], noise)
        else:
            offset = noise * self.sigma
        return torch.clamp(offset + mu, -1.0, 1.0)

    def apply_constraints(self) -> None:
        """Clamp the stored locations to [-1, 1] in place (only for a readout's own location parameter)."""
        if not self._predicted_grid and self._original_grid:
            with torch.no_grad():
                self._mu.clamp_(-1.0, 1.0)

    def feature_l1(self, reduction: Reduction = "sum", average: bool | None = None) -> torch.Tensor:
        """L1 norm of the own feature weights (0 when the features belong to another readout)."""
        if average is not None:
            reduction = "mean" if average else "sum"
        if not self._original_features:
            return torch.zeros((), device=self.sigma.device)
        return self.apply_reduction(self._features.abs(), reduction)

    def regularizer(self, reduction: Reduction = "sum", average: bool | None = None) -> torch.Tensor:
        """``gamma_readout · feature_l1``; ``average`` is the legacy spelling of ``reduction="mean"``."""
        return self.gamma_readout * self.feature_l1(reduction=reduction, average=average)

    def mu_dispersion(self) -> torch.Tensor:
        """Sum over the two axes of the standard deviation of the own locations across neurons."""
        return self._mu.reshape(-1, 2).std(dim=0).sum()

    def forward(
        self,
        x: torch.Tensor,
        sample: bool | None = None,
        shift: torch.Tensor | None = None,
        out_idx: torch.Tensor | Sequence[int] | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Input: (M, channels, height, width) or (batch, channels, time, height, width).

        Output: (M, neurons) or (batch, time, neurons). ``shift`` (M, 2) moves every location of a sample;
        ``out_idx`` restricts the output to a subset of neurons.
        """
        if x.dim() == 5:
            batch, channels, time, height, width = x.shape
            frames = x.permute(0, 2, 1, 3, 4).reshape(batch * time, channels, height, width)
            return self.forward(frames, sample=sample, shift=shift, out_idx=out_idx).reshape(batch, time, -1)
        channels = self.in_shape[0]
        if x.dim() != 4 or x.shape[1] != channels:
            raise DataShapeError(
                f"PointGaussianReadout: expected (batch·time, {channels}, height, width) or "
                f"(batch, {channels}, time, height, width) features, got {tuple(x.shape)}."
            )
        expected_spatial = self.in_shape[2:]
        if tuple(x.shape[2:]) != expected_spatial:
            warnings.warn(
                f"PointGaussianReadout: feature maps are {tuple(x.shape[2:])}, the readout was built for "
                f"{expected_spatial}; locations are relative, so each neuron now reads a different pixel.",
                UserWarning,
                stacklevel=2,
            )
        n_samples = x.shape[0]
        features = self.features
        bias: torch.Tensor | None = self.bias
        if self.batch_sample:
            grid = self.sample_grid(batch_size=n_samples, sample=sample)
        else:
            grid = self.sample_grid(batch_size=1, sample=sample).expand(n_samples, -1, -1, -1)
        if out_idx is not None:
            index = torch.as_tensor(out_idx, dtype=torch.long, device=grid.device)
            grid = grid[:, index]
            features = features[..., index]
            bias = None if bias is None else bias[index]
        if shift is not None:
            grid = grid + shift[:, None, None, :]
        sampled = F.grid_sample(x, grid, align_corners=self.align_corners)  # (M, channels, neurons, 1)
        y = (sampled.squeeze(-1) * features.squeeze(-2)).sum(dim=1)
        return y if bias is None else y + bias

    def number_of_neurons(self) -> int:
        """Number of neurons (``outdims``)."""
        return self.outdims

    def _plot_weight_for_neuron(self, neuron_id: int, axes: Sequence[Axes], add_titles: bool) -> None:
        location = self.mu.clamp(-1.0, 1.0)[0, neuron_id, 0].detach().cpu().numpy()
        axes[0].scatter([location[0]], [location[1]])
        axes[0].set_xlim(-1, 1)
        axes[0].set_ylim(1, -1)  # image convention: height axis downwards
        weights = self.features[0, :, 0, neuron_id].detach().cpu().numpy()
        axes[1].bar(range(len(weights)), weights)
        if add_titles:
            axes[0].set_title("Readout location")
            axes[1].set_title("Feature weights")


class FullGaussian2d(PointGaussianReadout):
    """Reference name of :class:`PointGaussianReadout` (identical behaviour)."""
