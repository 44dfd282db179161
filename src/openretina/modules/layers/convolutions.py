"""Space-time 3-D convolutions used by the cores, selected by name with :func:`get_conv_class`.

===================== ========================== =============================================================
name                  class                      kernel
===================== ========================== =============================================================
``custom_separable``  :class:`STSeparableBatchConv3d`  spatial map × Fourier-parametrised temporal kernel
``separable``         :class:`TorchSTSeparableConv3D`  spatial conv followed by a temporal conv
``full``              :class:`TorchFullConv3D`         unconstrained (k_t, k_h, k_w) kernel
``time_independent``  :class:`TimeIndependentConv3D`   spatial only (k_t = 1)
===================== ========================== =============================================================

Every ``forward`` takes a tensor (batch, in, time, height, width) or a tuple ``(tensor, data_key)``; the
session key picks that session's temporal speed ``log_speed_<data_key>`` (batch adaptation). Parameter,
buffer and state_dict names follow the reference checkpoints.

Differences from the reference (outputs of shipped models are unchanged):

* :class:`STSeparableBatchConv3d` no longer keeps its last output and full kernel as attributes
  (``.conv``/``.weight`` held activations alive between calls); use :meth:`~STSeparableBatchConv3d.full_weight`.
  Its forward runs on the fastest exact path for the layer shape (see :mod:`._separable_fast`,
  :func:`set_conv_backend`); ``set_conv_backend("dense")`` restores the reference computation.
* :class:`TorchSTSeparableConv3D` applies the temporal part of ``stride``/``padding`` to its temporal conv and
  the spatial part to its spatial conv; the reference applied both to both convs, which padded twice.
  (No shipped model uses this conv type.)
* A ``data_key`` for a conv without per-session speeds uses the default speed instead of raising
  ``AttributeError``; an unknown session on a conv *with* per-session speeds raises a clear error.
* :attr:`TimeIndependentConv3D.weight_spatial` is the live parameter, so penalties on it get gradients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from openretina.errors import DataFormatError, DataShapeError
from openretina.modules.layers._separable_fast import (
    ConvBackend,
    ConvolutionConfigError,
    Padding,
    SeparableKernel,
    Stride,
    autotune_choices,
    clear_autotune_cache,
    conv_backend,
    get_conv_backend,
    separable_conv3d,
    set_conv_backend,
)
from openretina.modules.layers.frozen_cache import cached_while_frozen

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ConvBackend",
    "ConvolutionConfigError",
    "STSeparableBatchConv3d",
    "TimeIndependentConv3D",
    "TorchFullConv3D",
    "TorchSTSeparableConv3D",
    "autotune_choices",
    "clear_autotune_cache",
    "compute_temporal_kernel",
    "conv_backend",
    "get_conv_backend",
    "get_conv_class",
    "set_conv_backend",
    "temporal_smoothing",
]

ConvInput = torch.Tensor | tuple[torch.Tensor, str | None]


def temporal_basis(stretches: torch.Tensor, length: int, subsampling_factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tapered Fourier basis of a temporal kernel: ``(sin_basis, cos_basis)``, each (length // factor, length).

    With ``t_j = j - length`` (oldest tap first) and speed ``s = stretches``, row ``k`` is
    ``mask_j · sin(k · s · t_j · 2π / length)`` (resp. ``cos``), where the sigmoid mask tapers the oldest taps.
    Row 0 of the sine basis is identically zero (kept for checkpoint compatibility).
    """
    n_freq = length // subsampling_factor
    time = torch.arange(length, dtype=stretches.dtype, device=stretches.device) - length
    phase = stretches * time * (2 * math.pi / length)
    mask = mask_tf(time, stretches, length)
    orders = torch.arange(n_freq, dtype=stretches.dtype, device=stretches.device)[:, None]
    return mask * torch.sin(orders * phase), mask * torch.cos(orders * phase)


def mask_tf(time: torch.Tensor, stretch: torch.Tensor, length: int) -> torch.Tensor:
    """Sigmoid taper ``1 / (1 + exp(-t - int(0.95 · length) / stretch))`` over kernel times ``t`` (length,)."""
    mask = torch.sigmoid(time + int(0.95 * length) / stretch)
    return mask.T if mask.dim() > 1 else mask


def compute_temporal_kernel(
    log_speed: torch.Tensor,
    sin_weights: torch.Tensor,
    cos_weights: torch.Tensor,
    length: int,
    subsampling_factor: int = 3,
) -> torch.Tensor:
    """Temporal kernels from Fourier coefficients.

    ``sin_weights``/``cos_weights``: (out, in, length // subsampling_factor); ``log_speed``: (1,).
    Output: (out, in, length, 1, 1) — ready to multiply a spatial kernel (out, in, 1, k_h, k_w).
    """
    sin_basis, cos_basis = temporal_basis(torch.exp(log_speed), length, subsampling_factor)
    return _combine_basis(sin_weights, cos_weights, sin_basis, cos_basis)[..., None, None]


def _combine_basis(
    sin_weights: torch.Tensor, cos_weights: torch.Tensor, sin_basis: torch.Tensor, cos_basis: torch.Tensor
) -> torch.Tensor:
    """(out, in, K) coefficients × (K, length) basis rows -> (out, in, length) kernels."""
    return torch.einsum("oik,kt->oit", sin_weights, sin_basis) + torch.einsum("oik,kt->oit", cos_weights, cos_basis)


def temporal_smoothing(sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Smoothness penalty on Fourier coefficients (out, in, K): higher frequencies weigh more.

    ``(Σ (λ·sin)² + Σ (λ·cos)²) / out`` with ``λ = linspace(0.1, 0.9, K)`` along the last axis.
    """
    weights = torch.linspace(0.1, 0.9, sin.shape[-1], device=sin.device, dtype=sin.dtype)
    return ((weights * sin).pow(2).sum() + (weights * cos).pow(2).sum()) / sin.shape[0]


def _split_input(input_: ConvInput) -> tuple[torch.Tensor, str | None]:
    if isinstance(input_, tuple | list):
        x, data_key = input_
        return x, data_key
    return input_, None


class _SpaceTimeConv(nn.Module):
    """Shared plumbing: per-session log speeds, input unpacking and shape checks."""

    _log_speed_default: torch.Tensor

    def __init__(
        self, in_channels: int, out_channels: int, log_speed_dict: Mapping[str, nn.Parameter], default_speed: bool
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self._session_speed_names = list(log_speed_dict)
        for name, speed in log_speed_dict.items():
            setattr(self, name, speed)  # shared Parameter objects: one speed per session across layers
        if default_speed:
            self.register_buffer("_log_speed_default", torch.zeros(1))

    def _unpack(self, input_: ConvInput) -> tuple[torch.Tensor, str | None]:
        x, data_key = _split_input(input_)
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise DataShapeError(
                f"{type(self).__name__}: expected input (batch, {self.in_channels} channels, time, height, width), "
                f"got shape {tuple(x.shape)}. Check the stimulus channels and that the time axis is present."
            )
        return x, data_key

    def log_speed(self, data_key: str | None = None) -> torch.Tensor:
        """Log temporal speed (1,) of session ``data_key`` (the default speed when None or not adapted)."""
        name = f"log_speed_{data_key}"
        if data_key is None or not self._session_speed_names:
            return self._log_speed_default
        if name not in self._session_speed_names:
            sessions = [n.removeprefix("log_speed_") for n in self._session_speed_names]
            raise DataFormatError(
                f"{type(self).__name__}: no temporal speed for session {data_key!r}; known sessions: {sessions}. "
                "Pass one of these data keys (or None for the default speed)."
            )
        return getattr(self, name)


class STSeparableBatchConv3d(_SpaceTimeConv):
    """Space-time separable conv: a spatial map times a temporal kernel built from a tapered Fourier basis.

    Kernel ``w[o, i, t, h, w] = temporal[o, i, t] · weight_spatial[o, i, 0, h, w]`` with
    ``temporal = Σ_k sin_weights[..., k] · S_k + cos_weights[..., k] · C_k`` (see :func:`temporal_basis`), whose
    time axis is stretched by ``exp(log_speed)`` of the session. Cross-correlation as ``torch.conv3d``.

    Input: (batch, in_channels, time, height, width) or ``(tensor, data_key)``.
    Output: (batch, out_channels, time', height', width') with the usual conv3d size arithmetic
    (``time' = time - temporal_kernel_size + 1`` without temporal padding).

    Note: ``sin_weights[..., 0]`` multiplies an all-zero basis function and never affects the output, and
    ``K = temporal_kernel_size // subsampling_factor`` drops frequencies when the size is not a multiple of
    the factor; both kept so reference checkpoints load unchanged.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        log_speed_dict: Mapping[str, nn.Parameter],
        temporal_kernel_size: int,
        spatial_kernel_size: int,
        spatial_kernel_size2: int | None = None,
        stride: Stride = 1,
        padding: Padding = 0,
        num_scans: int = 1,
        bias: bool = True,
        subsampling_factor: int = 3,
    ) -> None:
        if temporal_kernel_size < subsampling_factor:
            raise ConvolutionConfigError(
                f"STSeparableBatchConv3d: temporal_kernel_size ({temporal_kernel_size}) must be at least "
                f"subsampling_factor ({subsampling_factor}); lower subsampling_factor for such short kernels."
            )
        super().__init__(in_channels, out_channels, log_speed_dict, default_speed=True)
        self.temporal_kernel_size = temporal_kernel_size
        self.spatial_kernel_size = spatial_kernel_size
        self.spatial_kernel_size2 = spatial_kernel_size2 if spatial_kernel_size2 is not None else spatial_kernel_size
        self.stride = stride
        self.padding = padding
        self.num_scans = num_scans  # accepted for compatibility; unused
        self.subsampling_factor = subsampling_factor
        self.sin_weights, self.cos_weights = self.temporal_weights(
            temporal_kernel_size, in_channels, out_channels, subsampling_factor=subsampling_factor
        )
        kernel_shape = (out_channels, in_channels, 1, self.spatial_kernel_size, self.spatial_kernel_size2)
        self.weight_spatial = nn.Parameter(0.01 * torch.randn(kernel_shape))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    @staticmethod
    def temporal_weights(
        length: int, num_channels: int, num_feat: int, scale: float = 0.01, subsampling_factor: int = 3
    ) -> tuple[nn.Parameter, nn.Parameter]:
        """Initial ``(sin_weights, cos_weights)``, each (num_feat, num_channels, length // subsampling_factor)."""
        shape = (num_feat, num_channels, length // subsampling_factor)
        return nn.Parameter(scale * torch.randn(shape)), nn.Parameter(scale * torch.randn(shape))

    temporal_basis = staticmethod(temporal_basis)
    mask_tf = staticmethod(mask_tf)

    def temporal_kernel(self, data_key: str | None = None) -> torch.Tensor:
        """Temporal kernels (out, in, temporal_kernel_size) at the speed of session ``data_key``."""
        return compute_temporal_kernel(
            self.log_speed(data_key), self.sin_weights, self.cos_weights, self.temporal_kernel_size,
            self.subsampling_factor,
        )[..., 0, 0]  # fmt: skip

    def full_weight(self, data_key: str | None = None) -> torch.Tensor:
        """The full kernel (out, in, k_t, k_h, k_w) that the reference passes to ``conv3d``."""
        return self.temporal_kernel(data_key)[..., None, None] * self.weight_spatial

    def separable_kernel(self, data_key: str | None = None) -> SeparableKernel:
        """Temporal and spatial factors plus the shared basis, as consumed by the fast paths.

        Rebuilt on every call while gradients can flow into the weights (training); with frozen weights (evaluation,
        stimulus optimisation) built once and reused while the weights keep their values (see
        :func:`~openretina.modules.layers.frozen_cache.cached_while_frozen`).
        """
        weights = (self.log_speed(data_key), self.sin_weights, self.cos_weights, self.weight_spatial)
        return cached_while_frozen(self, data_key, weights, lambda: self._build_separable_kernel(data_key))

    def _build_separable_kernel(self, data_key: str | None) -> SeparableKernel:
        sin_basis, cos_basis = temporal_basis(
            torch.exp(self.log_speed(data_key)), self.temporal_kernel_size, self.subsampling_factor
        )
        temporal = _combine_basis(self.sin_weights, self.cos_weights, sin_basis, cos_basis)
        # Sine row 0 is identically zero, so it is left out of the basis the factorised path filters with.
        basis = torch.cat([cos_basis, sin_basis[1:]])
        coefficients = torch.cat([self.cos_weights, self.sin_weights[..., 1:]], dim=-1)
        return SeparableKernel(temporal, self.weight_spatial[:, :, 0], coefficients, basis)

    def forward(self, input_: ConvInput) -> torch.Tensor:
        """Input: (batch, in, time, height, width) or ``(tensor, data_key)``. Output: (batch, out, t', h', w')."""
        x, data_key = self._unpack(input_)
        return separable_conv3d(x, self.separable_kernel(data_key), self.bias, self.stride, self.padding)

    def get_spatial_weight(self, in_channel: int, out_channel: int) -> np.ndarray:
        """Spatial map (k_h, k_w) from input ``in_channel`` to output ``out_channel``."""
        return self.weight_spatial[out_channel, in_channel, 0].detach().cpu().numpy()

    def get_temporal_weight(self, in_channel: int, out_channel: int) -> tuple[np.ndarray, float]:
        """Temporal kernel (k_t,) at the default speed, and the largest |value| over all channel pairs."""
        kernels = self.temporal_kernel().detach().cpu().numpy()
        return kernels[out_channel, in_channel], float(np.abs(kernels).max())

    def get_sin_cos_weights(self, in_channel: int, out_channel: int) -> tuple[np.ndarray, np.ndarray]:
        """Fourier coefficients ``(sin, cos)``, each (K,), of one channel pair."""
        return (
            self.sin_weights[out_channel, in_channel].detach().cpu().numpy(),
            self.cos_weights[out_channel, in_channel].detach().cpu().numpy(),
        )

    def plot_weights(
        self,
        in_channel: int,
        out_channel: int,
        plot_log_speed: bool = False,
        add_titles: bool = True,
        remove_ticks: bool = False,
        spatial_weight_center_positive: bool = True,
    ) -> Figure:
        """Spatial map, temporal kernel, Fourier coefficients (and per-session log speeds) of one pair."""
        temporal, temporal_max = self.get_temporal_weight(in_channel, out_channel)
        speeds = None
        if plot_log_speed:
            speeds = {name: float(getattr(self, name).item()) for name in self._session_speed_names}
            speeds["default"] = float(self._log_speed_default.item())
        return _plot_conv_weights(
            self.get_spatial_weight(in_channel, out_channel),
            float(self.weight_spatial.detach().abs().max()),
            (in_channel, out_channel),
            temporal=(temporal, temporal_max),
            sin_cos=self.get_sin_cos_weights(in_channel, out_channel),
            log_speeds=speeds,
            add_titles=add_titles,
            remove_ticks=remove_ticks,
            center_positive=spatial_weight_center_positive,
        )

    def save_weight_visualizations(
        self, folder_path: str | Path, file_format: str = "jpg", state_suffix: str = ""
    ) -> None:
        """Write ``{in}_{out}_{state_suffix}.{file_format}`` for every channel pair into ``folder_path``."""
        _save_all_pairs(self, folder_path, file_format, state_suffix)


class TorchSTSeparableConv3D(_SpaceTimeConv):
    """Spatial ``Conv3d`` (1, k_h, k_w) followed by a temporal ``Conv3d`` (k_t, 1, 1) over out channels,
    scaled by ``exp(log_speed)`` of the session.

    The temporal part of ``stride``/``padding`` goes to the temporal conv and the spatial part to the spatial
    conv (the reference applied both to both convs). Input: (batch, in, time, height, width) or
    ``(tensor, data_key)``. Output: (batch, out, time', height', width').
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        log_speed_dict: Mapping[str, nn.Parameter],
        temporal_kernel_size: int,
        spatial_kernel_size: int,
        spatial_kernel_size2: int | None = None,
        stride: Stride = 1,
        padding: Padding = 0,
        bias: bool = True,
        num_scans: int = 1,
    ) -> None:
        super().__init__(in_channels, out_channels, log_speed_dict, default_speed=True)
        size2 = spatial_kernel_size2 if spatial_kernel_size2 is not None else spatial_kernel_size
        self.num_scans = num_scans  # accepted for compatibility; unused
        stride_t, stride_h, stride_w = (stride,) * 3 if isinstance(stride, int) else tuple(stride)
        space_pad: Padding
        time_pad: Padding
        if isinstance(padding, str):
            space_pad = time_pad = padding  # "same"/"valid" already leave size-1 kernel axes unpadded
        else:
            pad_t, pad_h, pad_w = (padding,) * 3 if isinstance(padding, int) else tuple(padding)
            space_pad, time_pad = (0, pad_h, pad_w), (pad_t, 0, 0)
        self.space_conv = nn.Conv3d(
            in_channels, out_channels, (1, spatial_kernel_size, size2), (1, stride_h, stride_w), space_pad, bias=bias
        )
        self.time_conv = nn.Conv3d(
            out_channels, out_channels, (temporal_kernel_size, 1, 1), (stride_t, 1, 1), time_pad, bias=bias
        )

    def forward(self, input_: ConvInput) -> torch.Tensor:
        """Input: (batch, in, time, height, width) or ``(tensor, data_key)``. Output: (batch, out, t', h', w')."""
        x, data_key = self._unpack(input_)
        return torch.exp(self.log_speed(data_key)) * self.time_conv(self.space_conv(x))


class TorchFullConv3D(_SpaceTimeConv):
    """Plain ``Conv3d`` with a full (k_t, k_h, k_w) kernel; the session speed is ignored.

    Input: (batch, in, time, height, width) or ``(tensor, data_key)``. Output: (batch, out, t', h', w').
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        log_speed_dict: Mapping[str, nn.Parameter],
        temporal_kernel_size: int,
        spatial_kernel_size: int,
        spatial_kernel_size2: int | None = None,
        stride: Stride = 1,
        padding: Padding = 0,
        bias: bool = True,
        num_scans: int = 1,
    ) -> None:
        super().__init__(in_channels, out_channels, log_speed_dict, default_speed=True)
        size2 = spatial_kernel_size2 if spatial_kernel_size2 is not None else spatial_kernel_size
        self.num_scans = num_scans  # accepted for compatibility; unused
        kernel = (temporal_kernel_size, spatial_kernel_size, size2)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, padding, bias=bias)  # type: ignore[arg-type]

    def forward(self, input_: ConvInput) -> torch.Tensor:
        """Input: (batch, in, time, height, width) or ``(tensor, data_key)``. Output: (batch, out, t', h', w')."""
        x, _ = self._unpack(input_)
        return self.conv(x)


class TimeIndependentConv3D(_SpaceTimeConv):
    """Frame-by-frame spatial ``Conv3d`` (1, k_h, k_w); ``temporal_kernel_size`` is accepted and ignored.

    Input: (batch, in, time, height, width) or ``(tensor, data_key)``. Output: (batch, out, time, h', w').
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        log_speed_dict: Mapping[str, nn.Parameter],
        temporal_kernel_size: int,
        spatial_kernel_size: int,
        spatial_kernel_size2: int | None = None,
        stride: Stride = 1,
        padding: Padding = 0,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(in_channels, out_channels, log_speed_dict, default_speed=False)
        size2 = spatial_kernel_size2 if spatial_kernel_size2 is not None else spatial_kernel_size
        kernel = (1, spatial_kernel_size, size2)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, padding, bias=bias)  # type: ignore[arg-type]

    @property
    def weight_spatial(self) -> torch.Tensor:
        """The spatial kernel (out, in, 1, k_h, k_w) — the parameter itself, so penalties on it train it."""
        return self.conv.weight

    def forward(self, input_: ConvInput) -> torch.Tensor:
        """Input: (batch, in, time, height, width) or ``(tensor, data_key)``. Output: (batch, out, time, h', w')."""
        x, _ = self._unpack(input_)
        return self.conv(x)

    def get_spatial_weight(self, in_channel: int, out_channel: int) -> np.ndarray:
        """Spatial map (k_h, k_w) from input ``in_channel`` to output ``out_channel``."""
        return self.conv.weight[out_channel, in_channel, 0].detach().cpu().numpy()

    def plot_weights(
        self,
        in_channel: int,
        out_channel: int,
        add_titles: bool = True,
        remove_ticks: bool = False,
        spatial_weight_center_positive: bool = True,
    ) -> Figure:
        """The spatial map of one channel pair, next to an empty "No temporal filter" panel."""
        return _plot_conv_weights(
            self.get_spatial_weight(in_channel, out_channel),
            float(self.conv.weight.detach().abs().max()),
            (in_channel, out_channel),
            add_titles=add_titles,
            remove_ticks=remove_ticks,
            center_positive=spatial_weight_center_positive,
        )

    def save_weight_visualizations(
        self, folder_path: str | Path, file_format: str = "jpg", state_suffix: str = ""
    ) -> None:
        """Write ``{in}_{out}_{state_suffix}.{file_format}`` for every channel pair into ``folder_path``."""
        _save_all_pairs(self, folder_path, file_format, state_suffix)


_CONV_CLASSES: dict[str, type[nn.Module]] = {
    "separable": TorchSTSeparableConv3D,
    "custom_separable": STSeparableBatchConv3d,
    "full": TorchFullConv3D,
    "time_independent": TimeIndependentConv3D,
}


def get_conv_class(conv_type: str) -> type[nn.Module]:
    """The convolution class registered under ``conv_type`` (see the module docstring for the names)."""
    if conv_type not in _CONV_CLASSES:
        raise ConvolutionConfigError(
            f"Unknown convolution_type {conv_type!r}; expected one of {sorted(_CONV_CLASSES)}."
        )
    return _CONV_CLASSES[conv_type]


def _plot_conv_weights(
    spatial: np.ndarray,
    spatial_max: float,
    channels: tuple[int, int],
    temporal: tuple[np.ndarray, float] | None = None,
    sin_cos: tuple[np.ndarray, np.ndarray] | None = None,
    log_speeds: dict[str, float] | None = None,
    add_titles: bool = True,
    remove_ticks: bool = False,
    center_positive: bool = True,
) -> Figure:
    """Panels: spatial map, temporal kernel (or an empty placeholder), Fourier coefficients, log speeds."""
    import matplotlib.pyplot as plt

    height, width = spatial.shape
    center = spatial[max(height // 2 - 2, 0) : height // 2 + 3, max(width // 2 - 2, 0) : width // 2 + 3]
    sign = -1.0 if center_positive and center.mean() < 0 else 1.0
    n_panels = 2 + (sin_cos is not None) + (log_speeds is not None)
    fig, axes = plt.subplots(ncols=n_panels, figsize=(6 * n_panels, 6))
    image = axes[0].imshow(sign * spatial, cmap="RdBu_r", vmin=-spatial_max, vmax=spatial_max)
    fig.colorbar(image, ax=axes[0])
    titles = ["Spatial weight", "Temporal weight" if temporal is not None else "No temporal filter"]
    if temporal is not None:
        kernel, kernel_max = temporal
        axes[1].plot(sign * kernel)
        axes[1].set_ylim(-kernel_max, kernel_max)
    if sin_cos is not None:
        axes[2].plot(sign * sin_cos[0], label="sin")
        axes[2].plot(sign * sin_cos[1], label="cos")
        axes[2].legend()
        titles.append("Fourier coefficients")
    if log_speeds is not None:
        axes[-1].bar(list(log_speeds), list(log_speeds.values()))
        titles.append("Log speeds")
    for ax, title in zip(axes, titles):
        if add_titles:
            ax.set_title(title)
        if remove_ticks:
            ax.set_xticks([])
            ax.set_yticks([])
    if add_titles:
        fig.suptitle(f"Weights for in_channel={channels[0]} out_channel={channels[1]}")
    return fig


def _save_all_pairs(
    conv: STSeparableBatchConv3d | TimeIndependentConv3D, folder_path: str | Path, file_format: str, state_suffix: str
) -> None:
    import matplotlib.pyplot as plt

    folder = Path(folder_path)
    folder.mkdir(parents=True, exist_ok=True)
    for in_channel in range(conv.in_channels):
        for out_channel in range(conv.out_channels):
            fig = conv.plot_weights(in_channel, out_channel)
            fig.savefig(folder / f"{in_channel}_{out_channel}_{state_suffix}.{file_format}", bbox_inches="tight")
            plt.close(fig)
