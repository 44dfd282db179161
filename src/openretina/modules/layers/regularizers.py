"""Smoothness and sparsity penalties on convolution weights.

The Laplace family measures how rough a filter is: the filter is convolved with a discrete Laplacian and
the squared response is divided by the squared weights, so the penalty is invariant to the filter's scale.
The buffer names (``laplace.filter``) and the formulas match the reference system so checkpoints load
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataShapeError

__all__ = [
    "EPS",
    "LAPLACE_1D",
    "FlatLaplaceL23dnorm",
    "GaussianLaplaceL2",
    "LAPLACE_3x3",
    "LAPLACE_5x5",
    "LAPLACE_7x7",
    "Laplace",
    "Laplace1d",
    "LaplaceL2norm",
    "TimeLaplaceL23dnorm",
    "gaussian2d",
    "group_sparsity_norm",
]

EPS = 1e-6
"""Added to the denominator of every normalised penalty so an all-zero filter gives 0, not NaN."""

LAPLACE_1D = np.array([-1, 2, -1], dtype=np.float32)[None, None, :]
LAPLACE_3x3 = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float32)[None, None, ...]
LAPLACE_5x5 = np.array(
    [
        [0, 0, 1, 0, 0],
        [0, 1, 2, 1, 0],
        [1, 2, -16, 2, 1],
        [0, 1, 2, 1, 0],
        [0, 0, 1, 0, 0],
    ],
    dtype=np.float32,
)[None, None, ...]
LAPLACE_7x7 = np.array(
    [
        [0, 0, 1, 1, 1, 0, 0],
        [0, 1, 3, 3, 3, 1, 0],
        [1, 3, 0, -7, 0, 3, 1],
        [1, 3, -7, -24, -7, 3, 1],
        [1, 3, 0, -7, 0, 3, 1],
        [0, 1, 3, 3, 3, 1, 0],
        [0, 0, 1, 1, 1, 0, 0],
    ],
    dtype=np.float32,
)[None, None, ...]

_LAPLACE_2D_BY_SIZE = {3: LAPLACE_3x3, 5: LAPLACE_5x5, 7: LAPLACE_7x7}


def _check_rank(x: torch.Tensor, rank: int, what: str, layout: str) -> None:
    if x.dim() != rank:
        raise DataShapeError(
            f"{what}: expected a {rank}-D weight tensor {layout}, got shape {tuple(x.shape)}. "
            "Pass the convolution weight itself, not a batch of activations."
        )


class Laplace(nn.Module):
    """Discrete 2-D Laplacian filter (3×3, 5×5 or 7×7), applied as a convolution.

    Input: (M, 1, height, width). Output: (M, 1, height', width') where the size change depends on
    ``padding`` (default ``filter_size // 2`` keeps the size).
    """

    filter: torch.Tensor

    def __init__(self, padding: int | None = None, filter_size: int = 3, persistent_buffer: bool = True) -> None:
        super().__init__()
        if filter_size not in _LAPLACE_2D_BY_SIZE:
            raise ValueError(f"Laplace: filter_size must be one of {sorted(_LAPLACE_2D_BY_SIZE)}, got {filter_size}.")
        self.register_buffer(
            "filter", torch.from_numpy(_LAPLACE_2D_BY_SIZE[filter_size].copy()), persistent=persistent_buffer
        )
        self.padding_size = filter_size // 2 if padding is None else padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve every map in ``x`` (M, 1, H, W) with the Laplacian."""
        return F.conv2d(x, self.filter, bias=None, padding=self.padding_size)


class Laplace1d(nn.Module):
    """Discrete 1-D Laplacian ``[-1, 2, -1]``, applied as a convolution.

    Input: (M, 1, length). Output: (M, 1, length') (default padding 1 keeps the length).
    """

    filter: torch.Tensor

    def __init__(self, padding: int | None = None, persistent_buffer: bool = True) -> None:
        super().__init__()
        self.register_buffer("filter", torch.from_numpy(LAPLACE_1D.copy()), persistent=persistent_buffer)
        self.padding_size = LAPLACE_1D.shape[-1] // 2 if padding is None else padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve every trace in ``x`` (M, 1, L) with the 1-D Laplacian."""
        return F.conv1d(x, self.filter, bias=None, padding=self.padding_size)


def _normalised_roughness(laplacian_of_x: torch.Tensor, x: torch.Tensor, avg: bool) -> torch.Tensor:
    """``agg(L(x)²) / (agg(x²) + EPS)`` with ``agg`` = mean if ``avg`` else sum."""
    aggregate = torch.mean if avg else torch.sum
    return aggregate(laplacian_of_x.pow(2)) / (aggregate(x.pow(2)) + EPS)


class TimeLaplaceL23dnorm(nn.Module):
    """Temporal roughness of a 3-D conv weight whose spatial extent is 1×1.

    Input: (out_channels, in_channels, time, 1, 1). Output: scalar
    ``agg(L(w)²) / (agg(w²) + 1e-6)`` with the 1-D Laplacian along time.
    """

    def __init__(self, padding: int | None = None, persistent_buffer: bool = True) -> None:
        super().__init__()
        self.laplace = Laplace1d(padding=padding, persistent_buffer=persistent_buffer)

    def forward(self, x: torch.Tensor, avg: bool = False) -> torch.Tensor:
        """Penalty for ``x`` (O, I, T, 1, 1); ``avg`` averages instead of summing."""
        _check_rank(x, 5, "TimeLaplaceL23dnorm", "(out_channels, in_channels, time, 1, 1)")
        out_ch, in_ch, k_time, k_h, k_w = x.shape
        if (k_h, k_w) != (1, 1):
            raise DataShapeError(
                f"TimeLaplaceL23dnorm: expected spatial size (1, 1), got ({k_h}, {k_w}) in weight shape "
                f"{tuple(x.shape)}. Pass a purely temporal kernel."
            )
        flat = x.reshape(out_ch * in_ch, 1, k_time)
        return _normalised_roughness(self.laplace(flat), flat, avg)


class FlatLaplaceL23dnorm(nn.Module):
    """Spatial roughness of a 3-D conv weight whose temporal extent is 1.

    Input: (out_channels, in_channels, 1, height, width). Output: scalar
    ``agg(L(w)²) / (agg(w²) + 1e-6)`` with the 3×3 Laplacian over space.
    """

    def __init__(self, padding: int | None = None) -> None:
        super().__init__()
        self.laplace = Laplace(padding=padding)

    def forward(self, x: torch.Tensor, avg: bool = False) -> torch.Tensor:
        """Penalty for ``x`` (O, I, 1, H, W); ``avg`` averages instead of summing."""
        _check_rank(x, 5, "FlatLaplaceL23dnorm", "(out_channels, in_channels, 1, height, width)")
        out_ch, in_ch, k_time, k_h, k_w = x.shape
        if k_time != 1:
            raise DataShapeError(
                f"FlatLaplaceL23dnorm: expected temporal size 1, got {k_time} in weight shape {tuple(x.shape)}. "
                "Pass the spatial part of a space-time separable kernel."
            )
        flat = x.reshape(out_ch * in_ch, 1, k_h, k_w)
        return _normalised_roughness(self.laplace(flat), flat, avg)


class LaplaceL2norm(nn.Module):
    """Spatial roughness of a 2-D conv weight.

    Input: (out_channels, in_channels, height, width). Output: scalar ``agg(L(w)²) / (agg(w²) + 1e-6)``.
    """

    def __init__(self, padding: int | None = None) -> None:
        super().__init__()
        self.laplace = Laplace(padding=padding)

    def forward(self, x: torch.Tensor, avg: bool = False) -> torch.Tensor:
        """Penalty for ``x`` (O, I, H, W); ``avg`` averages instead of summing."""
        _check_rank(x, 4, "LaplaceL2norm", "(out_channels, in_channels, height, width)")
        out_ch, in_ch, k_h, k_w = x.shape
        flat = x.reshape(out_ch * in_ch, 1, k_h, k_w)
        return _normalised_roughness(self.laplace(flat), flat, avg)


def gaussian2d(
    size: int | Sequence[int],
    sigma: float = 5.0,
    gamma: float = 1.0,
    theta: float = 0.0,
    center: Sequence[float] = (0.0, 0.0),
    normalize: bool = True,
) -> np.ndarray:
    """Sample an (optionally rotated, elongated) 2-D Gaussian on a centred pixel grid.

    Coordinates run from ``-(n-1)/2`` to ``(n-1)/2`` along each axis and are shifted by ``center``
    (``(row, column)``), then rotated by ``theta`` radians. ``sigma`` is the width along the rotated x axis,
    ``sigma / gamma`` along y. With ``normalize`` the result is min-max scaled to [0, 1].

    Output: float32 array (height, width).
    """
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    rows = np.arange(height, dtype=np.float64) - (height - 1) / 2 - center[0]
    cols = np.arange(width, dtype=np.float64) - (width - 1) / 2 - center[1]
    y, x = np.meshgrid(rows, cols, indexing="ij")
    x_rot = x * np.cos(theta) + y * np.sin(theta)
    y_rot = -x * np.sin(theta) + y * np.cos(theta)
    sigma_x, sigma_y = sigma, sigma / gamma
    gauss = np.exp(-0.5 * (x_rot**2 / sigma_x**2 + y_rot**2 / sigma_y**2))
    if normalize:
        span = gauss.max() - gauss.min()
        # A constant map (e.g. a 1×1 kernel) has no range; keep it as ones instead of dividing by zero.
        gauss = (gauss - gauss.min()) / span if span > 0 else np.ones_like(gauss)
    return gauss.astype(np.float32)


class GaussianLaplaceL2(nn.Module):
    """Laplace roughness that ignores the centre of the kernel.

    The Laplacian response is multiplied by ``1 - g`` where ``g`` is a Gaussian (sigma = smallest kernel
    side / 4, peak 1), so sharp structure in the middle of a receptive field is cheap and roughness at its
    edges is expensive.

    Input: (out_channels, in_channels, height, width) with (height, width) = ``kernel``. Output: scalar.
    """

    def __init__(self, kernel: int | Sequence[int], padding: int | None = None) -> None:
        super().__init__()
        self.laplace = Laplace(padding=padding)
        self.kernel: tuple[int, int] = (kernel, kernel) if isinstance(kernel, int) else (int(kernel[0]), int(kernel[1]))
        # Deliberately not a buffer: the reference state_dict has only `laplace.filter` for this module.
        self.gaussian2d = torch.from_numpy(gaussian2d(size=self.kernel, sigma=min(self.kernel) / 4))

    def forward(self, x: torch.Tensor, avg: bool = False) -> torch.Tensor:
        """Penalty for ``x`` (O, I, H, W); ``avg`` averages instead of summing."""
        _check_rank(x, 4, "GaussianLaplaceL2", "(out_channels, in_channels, height, width)")
        out_ch, in_ch, k_h, k_w = x.shape
        flat = x.reshape(out_ch * in_ch, 1, k_h, k_w)
        laplacian = self.laplace(flat)
        if laplacian.shape[-2:] != self.gaussian2d.shape:
            raise DataShapeError(
                f"GaussianLaplaceL2: the Laplacian of a weight of shape {tuple(x.shape)} has spatial size "
                f"{tuple(laplacian.shape[-2:])}, but the Gaussian mask was built for kernel {self.kernel}. "
                "Build the regulariser with the kernel size of the weight it penalises."
            )
        weighting = 1 - self.gaussian2d.to(device=x.device, dtype=x.dtype)
        return _normalised_roughness(laplacian * weighting, flat, avg)


def group_sparsity_norm(weight: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Group-lasso penalty that favours output channels reading from few input channels.

    For a conv weight ``W`` (out_channels, in_channels, ...):
    ``Σ_o Σ_i ‖W[o, i]‖₂ / sqrt(eps + ‖W[o]‖₂²)``. Each output channel contributes a value between 1 (it
    uses one input channel) and sqrt(in_channels) (it uses all equally), independent of the weight scale.

    Output: scalar tensor.
    """
    if weight.dim() < 2:
        raise DataShapeError(
            f"group_sparsity_norm: expected a weight with at least 2 dims (out_channels, in_channels, ...), "
            f"got shape {tuple(weight.shape)}."
        )
    flat = weight.flatten(start_dim=2)
    # vector_norm (not sqrt of a sum) so an all-zero kernel gets a zero gradient instead of NaN.
    per_pair = torch.linalg.vector_norm(flat, dim=2)  # (O, I): norm of each in->out kernel
    per_output_sq = flat.pow(2).sum(dim=(1, 2)).unsqueeze(1)  # (O, 1)
    return (per_pair / torch.sqrt(eps + per_output_sq)).sum()
