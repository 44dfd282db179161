"""Cores: the shared feature extractors that map a stimulus movie to feature movies for the readouts.

Every core takes ``(batch, channels, time, height, width)`` and returns ``(batch, channels', time', height',
width')``. Cores without temporal padding are causal and shorten time: ``time' = time -
number_of_cut_frames()``; an input too short to leave one output frame raises
:class:`~openretina.errors.InsufficientFramesError` before any computation.

Output shapes are computed analytically (:meth:`Core.output_shape`), so building a model never runs a
dummy batch through the core; the reference did, in training mode, which shifted the BatchNorm running
statistics of every freshly built model.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataShapeError, InsufficientFramesError
from openretina.modules.core._shapes import (
    ConvPadding,
    normalise_padding,
    padded_conv_length,
    smallest_sufficient_input,
)
from openretina.modules.layers.convolutions import (
    STSeparableBatchConv3d,
    TimeIndependentConv3D,
    TorchSTSeparableConv3D,
    get_conv_class,
    temporal_smoothing,
)
from openretina.modules.layers.reducers import WeightedChannelSumLayer
from openretina.modules.layers.regularizers import FlatLaplaceL23dnorm, TimeLaplaceL23dnorm, group_sparsity_norm
from openretina.modules.layers.scaling import Bias3DLayer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Core", "Core3d", "DummyCore", "SimpleCoreWrapper", "temporal_smoothing"]


class Core(nn.Module):
    """Base class of all cores. A subclass needs only ``__init__`` and ``forward``.

    Defaults: :meth:`regularizer` is zero, :meth:`number_of_cut_frames` is 0 (override it if the core
    shortens time), :meth:`output_shape` runs the core once in eval mode (override it with the arithmetic
    when you can), :meth:`save_weight_visualizations` does nothing.

    Input: (batch, channels, time, height, width). Output: (batch, channels', time', height', width').
    """

    def initialize(self) -> None:
        """(Re-)initialise the weights; nothing by default."""

    def regularizer(self) -> torch.Tensor:
        """Penalty added to the training loss; a zero scalar by default."""
        reference = next(iter(self.parameters()), None)
        return torch.zeros((), device=reference.device if reference is not None else None)

    def number_of_cut_frames(self) -> int:
        """Input frames consumed before the first output frame (temporal receptive field − 1)."""
        return 0

    def min_input_frames(self) -> int:
        """Fewest input frames that still give one output frame."""
        return self.number_of_cut_frames() + 1

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Shape (channels', time', height', width') of the output for one input of shape (C, T, H, W).

        This default runs the core once on zeros in eval mode (BatchNorm statistics are left untouched);
        subclasses compute it without running anything.
        """
        reference = next(iter(self.parameters()), None)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                probe = torch.zeros((1, *input_shape), device=reference.device if reference is not None else None)
                return tuple(self(probe).shape[1:])
        finally:
            self.train(was_training)

    def check_input(self, x: torch.Tensor, in_channels: int | None = None) -> None:
        """Raise a clear error when ``x`` is not (B, C, T, H, W) or is too short for this core."""
        name = type(self).__name__
        if x.dim() != 5:
            raise DataShapeError(
                f"{name}: expected a stimulus of shape (batch, channels, time, height, width), got "
                f"{tuple(x.shape)}. Add a batch axis with x[None] for a single clip."
            )
        if in_channels is not None and x.shape[1] != in_channels:
            raise DataShapeError(
                f"{name}: expected {in_channels} stimulus channels (dim 1), got {x.shape[1]} in shape {tuple(x.shape)}."
            )
        needed = self.min_input_frames()
        if x.shape[2] < needed:
            raise InsufficientFramesError(
                f"{name}: the model consumes {needed - 1} frames of history; give at least {needed} time steps "
                f"(the stimulus has {x.shape[2]} frames, shape {tuple(x.shape)})."
            )

    def check_spatial_size(self, x: torch.Tensor) -> None:
        """Raise :class:`DataShapeError` when ``x`` is too small in space to leave one output pixel.

        Uses :meth:`output_shape`, so only cores that compute it analytically should call this.
        """
        _, _, out_height, out_width = self.output_shape(tuple(x.shape[1:]))
        if out_height < 1 or out_width < 1:
            raise DataShapeError(
                f"{type(self).__name__}: a stimulus of {x.shape[3]}x{x.shape[4]} pixels (height x width) leaves "
                f"{out_height}x{out_width} output pixels after the spatial kernels and pooling; give a larger "
                "stimulus or pad the convolutions."
            )

    def save_weight_visualizations(self, folder_path: str, file_format: str = "jpg", state_suffix: str = "") -> None:
        """Write weight plots into ``folder_path``; this core has none, so only a warning is issued."""
        warnings.warn(f"{type(self).__name__} has no weight visualisation; nothing written.", stacklevel=2)

    def extra_repr(self) -> str:
        # The regularisation weights and skip settings are what distinguish two cores of the same layout.
        settings = {
            name: value
            for name, value in vars(self).items()
            if ("gamma" in name or "skip" in name) and isinstance(value, (int, float))
        }
        return ", ".join(f"{name}={value}" for name, value in sorted(settings.items()))


class Core3d(Core):
    """Core whose :meth:`initialize` gives every ``nn.Conv3d`` Xavier-normal weights and zero biases."""

    def initialize(self) -> None:
        """Apply :meth:`init_conv` to every submodule."""
        self.apply(self.init_conv)

    @staticmethod
    def init_conv(module: nn.Module) -> None:
        """Xavier-normal weight and zero bias for a ``nn.Conv3d``; other modules are left alone."""
        if isinstance(module, nn.Conv3d):
            nn.init.xavier_normal_(module.weight.data)
            if module.bias is not None:
                module.bias.data.fill_(0)


class DummyCore(Core):
    """Identity core that only drops the first ``cut_first_n_frames`` frames (used by LNP-style models).

    Input: (batch, channels, time, height, width). Output: (batch, channels, time - cut, height, width).
    """

    def __init__(self, cut_first_n_frames: int | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.cut_first_n_frames = cut_first_n_frames

    def forward(self, x: torch.Tensor, data_key: str | None = None, **kwargs: Any) -> torch.Tensor:
        """Return ``x[:, :, cut_first_n_frames:]``; ``data_key`` is accepted and ignored."""
        self.check_input(x)
        return x[:, :, self.number_of_cut_frames() :]

    def number_of_cut_frames(self) -> int:
        """The configured cut (0 when ``None``)."""
        return self.cut_first_n_frames or 0

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """(C, T - cut, H, W) for input (C, T, H, W)."""
        channels, time, height, width = (int(v) for v in input_shape)
        return (channels, time - self.number_of_cut_frames(), height, width)


def spatial_weight_of(conv: nn.Module) -> torch.Tensor:
    """Spatial kernel (out, in, 1, k, k) of a space-time convolution, as a tensor that carries gradients.

    (The reference read a detached copy for ``time_independent`` convs, so its spatial penalty never trained
    them; here it is the parameter itself.)
    """
    if isinstance(conv, TorchSTSeparableConv3D):
        return conv.space_conv.weight
    if isinstance(conv, (STSeparableBatchConv3d, TimeIndependentConv3D)):
        return conv.weight_spatial
    raise ValueError(f"{type(conv).__name__} has no separate spatial kernel to regularise.")


def _resolve_layer_padding(padding: bool | int | str | Sequence[int]) -> ConvPadding:
    # Checked by identity, as the reference does: True -> "same", False -> 0; 0 and 1 are int paddings.
    if padding is True:
        return "same"
    if padding is False:
        return 0
    return normalise_padding(padding)


def _as_int_tuple(values: Sequence[int] | int, what: str) -> tuple[int, ...]:
    if isinstance(values, int):
        raise ValueError(f"SimpleCoreWrapper: {what} must be a sequence with one entry per layer, got {values}.")
    return tuple(int(v) for v in values)


class SimpleCoreWrapper(Core):
    """Stack of space-time convolution layers: the core of every CNN in the model zoo.

    Each layer ``features.layer{i}`` is ``conv`` → ``norm`` (BatchNorm3d) → ``bias`` (per-channel offset) →
    ``nonlin`` (ELU) → optional ``dropout`` (Dropout3d) → optional ``pool`` (MaxPool3d (1, 2, 2) after layers
    0, n, 2n, … when ``maxpool_every_n_layers=n``). State_dict keys match the reference exactly. (The affine
    BatchNorm's own shift and the separate ``bias`` layer are redundant — together they act as one offset —
    but both are kept so reference checkpoints load unchanged.)

    Args:
        channels: (in_channels, hidden_1, …, hidden_L); ``in_channels`` is 1 when colour squashing is used.
        temporal_kernel_sizes / spatial_kernel_sizes: one per layer (square spatial kernels).
        gamma_input: weight of the spatial Laplace smoothness of layer 0's spatial kernels.
        gamma_temporal: weight of the temporal smoothness (Fourier coefficients, or a temporal Laplace for
            ``"separable"`` convs).
        gamma_in_sparse: weight of :meth:`group_sparsity_0` (all layers, see there).
        gamma_hidden: weight of :meth:`group_sparsity` (layers 1…L-1).
        dropout_rate: Dropout3d probability after each layer (0 = no dropout module).
        cut_first_n_frames: frames dropped from the start of the output.
        maxpool_every_n_layers: see above; ``None`` = no pooling.
        downsample_input_kernel_size: (t, h, w) average-pooling of the input (stride = kernel), or ``None``.
        input_padding / hidden_padding: padding of layer 0 / later layers: ``True`` = "same", ``False`` = 0,
            anything else (int, (time, height, width), "same"/"valid") is passed to the convolution.
        color_squashing_weights: weights of a channel sum applied to the input first (``channels[0]`` must be 1).
        convolution_type: "custom_separable" (default), "separable", "full" or "time_independent".
        n_neurons_dict: accepted for config compatibility and ignored.

    Input: (batch, C_in, time, height, width) with C_in = ``channels[0]`` (or the number of colour-squashing
    weights). Output: (batch, channels[-1], time', height', width'), see :meth:`output_shape`.
    """

    def __init__(
        self,
        channels: Sequence[int],
        temporal_kernel_sizes: Sequence[int],
        spatial_kernel_sizes: Sequence[int],
        gamma_input: float,
        gamma_temporal: float,
        gamma_in_sparse: float,
        gamma_hidden: float,
        dropout_rate: float = 0.0,
        cut_first_n_frames: int = 30,
        maxpool_every_n_layers: int | None = None,
        downsample_input_kernel_size: Sequence[int] | None = None,
        input_padding: bool | int | str | Sequence[int] = False,
        hidden_padding: bool | int | str | Sequence[int] = True,
        color_squashing_weights: Sequence[float] | None = None,
        convolution_type: str = "custom_separable",
        n_neurons_dict: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        channels = _as_int_tuple(channels, "channels")
        temporal_kernel_sizes = _as_int_tuple(temporal_kernel_sizes, "temporal_kernel_sizes")
        spatial_kernel_sizes = _as_int_tuple(spatial_kernel_sizes, "spatial_kernel_sizes")
        if len(channels) < 2:
            raise ValueError(
                f"SimpleCoreWrapper: channels must list the input channels and at least one layer, got {channels}."
            )
        n_layers = len(channels) - 1
        if len(temporal_kernel_sizes) != n_layers or len(spatial_kernel_sizes) != n_layers:
            raise ValueError(
                f"SimpleCoreWrapper: {n_layers} layers (channels={channels}) need {n_layers} temporal and spatial "
                f"kernel sizes, got temporal_kernel_sizes={temporal_kernel_sizes}, "
                f"spatial_kernel_sizes={spatial_kernel_sizes}."
            )
        if color_squashing_weights is not None and channels[0] != 1:
            raise ValueError(
                f"SimpleCoreWrapper: colour squashing sums the input into one channel, so channels[0] must be 1, "
                f"got {channels[0]}."
            )
        if cut_first_n_frames and not input_padding:
            warnings.warn(
                f"SimpleCoreWrapper: cut_first_n_frames={cut_first_n_frames} with an unpadded input layer drops "
                "frames on top of those the temporal kernels already consume.",
                UserWarning,
                stacklevel=2,
            )
        conv_class = get_conv_class(convolution_type)
        self._check_regulariser_support(conv_class, gamma_input, gamma_temporal, gamma_hidden, gamma_in_sparse)

        self.channels = channels
        self.temporal_kernel_sizes = temporal_kernel_sizes
        self.spatial_kernel_sizes = spatial_kernel_sizes
        self.gamma_input = gamma_input
        self.gamma_temporal = gamma_temporal
        self.gamma_in_sparse = gamma_in_sparse
        self.gamma_hidden = gamma_hidden
        self.dropout_rate = dropout_rate
        self.cut_first_n_frames = cut_first_n_frames
        self.maxpool_every_n_layers = maxpool_every_n_layers
        self.downsample_input_kernel_size = (
            None if downsample_input_kernel_size is None else tuple(int(k) for k in downsample_input_kernel_size)
        )
        self.convolution_type = convolution_type
        self.paddings: tuple[ConvPadding, ...] = tuple(
            _resolve_layer_padding(input_padding if layer == 0 else hidden_padding) for layer in range(n_layers)
        )

        # Registration order fixes the state_dict key order of the reference.
        self._input_weights_regularizer_spatial = FlatLaplaceL23dnorm(padding=0)
        self._input_weights_regularizer_temporal = TimeLaplaceL23dnorm(padding=0, persistent_buffer=False)
        self.features = nn.Sequential()
        for layer in range(n_layers):
            self.features.add_module(f"layer{layer}", self._build_layer(conv_class, layer))
        self.color_squashing_layer = (
            WeightedChannelSumLayer(color_squashing_weights) if color_squashing_weights is not None else None
        )
        self._min_input_frames = smallest_sufficient_input(self._output_time)

    @staticmethod
    def _check_regulariser_support(
        conv_class: type[nn.Module], gamma_input: float, gamma_temporal: float, gamma_hidden: float, gamma_in: float
    ) -> None:
        # Fail at construction, not at the first training step, when a penalty has nothing to act on.
        spatial_ok = conv_class in (STSeparableBatchConv3d, TorchSTSeparableConv3D, TimeIndependentConv3D)
        if not spatial_ok and (gamma_input or gamma_hidden or gamma_in):
            raise ValueError(
                f"SimpleCoreWrapper: gamma_input/gamma_hidden/gamma_in_sparse need convolutions with a separate "
                f"spatial kernel; {conv_class.__name__} has none. Set them to 0 or use 'custom_separable'."
            )
        if gamma_temporal and conv_class not in (STSeparableBatchConv3d, TorchSTSeparableConv3D):
            raise ValueError(
                f"SimpleCoreWrapper: gamma_temporal needs a 'custom_separable' or 'separable' convolution; "
                f"{conv_class.__name__} has no separate temporal kernel. Set gamma_temporal to 0."
            )

    def _build_layer(self, conv_class: type[nn.Module], layer: int) -> nn.Sequential:
        out_channels = self.channels[layer + 1]
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        parts["conv"] = conv_class(
            self.channels[layer],
            out_channels,
            log_speed_dict={},
            temporal_kernel_size=self.temporal_kernel_sizes[layer],
            spatial_kernel_size=self.spatial_kernel_sizes[layer],
            bias=False,
            padding=self.paddings[layer],
        )
        parts["norm"] = nn.BatchNorm3d(out_channels, momentum=0.1, affine=True)
        parts["bias"] = Bias3DLayer(out_channels)
        parts["nonlin"] = nn.ELU()
        if self.dropout_rate > 0:
            parts["dropout"] = nn.Dropout3d(p=self.dropout_rate)
        if self._pools_after(layer):
            parts["pool"] = nn.MaxPool3d((1, 2, 2))
        return nn.Sequential(parts)

    def _pools_after(self, layer: int) -> bool:
        return self.maxpool_every_n_layers is not None and layer % self.maxpool_every_n_layers == 0

    def _layer_kernel(self, layer: int) -> tuple[int, int, int]:
        temporal = 1 if self.convolution_type == "time_independent" else self.temporal_kernel_sizes[layer]
        return (temporal, self.spatial_kernel_sizes[layer], self.spatial_kernel_sizes[layer])

    def _layer_output_length(self, layer: int, length: int, axis: int) -> int:
        # Also right for "separable" convs, whose two parts each take the padding of their own axes.
        return padded_conv_length(length, self._layer_kernel(layer)[axis], self.paddings[layer], axis)

    def _output_length(self, length: int, axis: int) -> int:
        if self.downsample_input_kernel_size is not None:
            length //= self.downsample_input_kernel_size[axis]
        for layer in range(len(self.features)):
            length = self._layer_output_length(layer, length, axis)
            if axis > 0 and self._pools_after(layer):
                length //= 2
        if axis == 0:
            length -= self.cut_first_n_frames
        return length

    def _output_time(self, length: int) -> int:
        return self._output_length(length, 0)

    def number_of_cut_frames(self) -> int:
        """Input frames consumed before the first output frame: Σ (k_t − 1) over unpadded layers + the cut.

        30 for the Höfling low-res zoo core (kernels 21 and 11, no cut).
        """
        return self._min_input_frames - 1

    def min_input_frames(self) -> int:
        """Fewest input frames that give one output frame."""
        return self._min_input_frames

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """(channels[-1], T', H', W') for one input of shape (C, T, H, W), computed without running the core.

        Example: Höfling low-res, (2, 50, 18, 16) → (16, 20, 8, 6).
        """
        _, time, height, width = (int(v) for v in input_shape)
        return (
            self.channels[-1],
            self._output_length(time, 0),
            self._output_length(height, 1),
            self._output_length(width, 2),
        )

    def forward(self, input_: torch.Tensor) -> torch.Tensor:
        """Input: (batch, C_in, time, height, width). Output: (batch, channels[-1], time', height', width')."""
        in_channels = (
            self.color_squashing_layer.channel_weights.numel()
            if self.color_squashing_layer is not None
            else self.channels[0]
        )
        self.check_input(input_, in_channels)
        self.check_spatial_size(input_)
        x = input_
        if self.color_squashing_layer is not None:
            x = self.color_squashing_layer(x)
        if self.downsample_input_kernel_size is not None:
            x = F.avg_pool3d(x, kernel_size=self.downsample_input_kernel_size)
        x = self.features(x)
        return x[:, :, self.cut_first_n_frames :]

    # ------------------------------------------------------------------------------------------ regularisation
    def _conv(self, layer: int) -> nn.Module:
        return cast(nn.Module, self.features[layer].conv)

    def _spatial_weight(self, layer: int) -> torch.Tensor:
        return spatial_weight_of(self._conv(layer))

    def spatial_laplace(self) -> torch.Tensor:
        """Laplace roughness of layer 0's spatial kernels: Σ Lap(W)² / (Σ W² + 1e-6), 3×3, no padding."""
        return self._input_weights_regularizer_spatial(self._spatial_weight(0), avg=False)

    def temporal_smoothness(self) -> torch.Tensor:
        """Smoothness of the temporal kernels.

        ``custom_separable``: Σ over all layers of ``temporal_smoothing(sin_weights, cos_weights)``;
        ``separable``: temporal Laplace of layer 0's ``time_conv`` weights.
        """
        first = self._conv(0)
        if isinstance(first, STSeparableBatchConv3d):
            terms = [
                temporal_smoothing(conv.sin_weights, conv.cos_weights)
                for conv in (cast(STSeparableBatchConv3d, self._conv(i)) for i in range(len(self.features)))
            ]
            return torch.stack(terms).sum()
        if isinstance(first, TorchSTSeparableConv3D):
            return self._input_weights_regularizer_temporal(first.time_conv.weight, avg=False)
        raise ValueError(
            f"SimpleCoreWrapper: temporal smoothness is defined for 'custom_separable' and 'separable' "
            f"convolutions, not {self.convolution_type!r}."
        )

    def group_sparsity(self) -> torch.Tensor:
        """Group sparsity of the spatial kernels of layers 1…L-1 (0 for a one-layer core).

        Per layer ``Σ_o Σ_i ‖W[o,i]‖ / sqrt(1e-8 + ‖W[o]‖²)`` (see
        :func:`~openretina.modules.layers.regularizers.group_sparsity_norm`), summed over layers.
        """
        return self._group_sparsity_over(range(1, len(self.features)))

    def group_sparsity_0(self) -> torch.Tensor:
        """The :meth:`group_sparsity` formula over *all* layers, layer 0 included.

        Kept as in the reference for reproducible training (its name suggests layer 0 only): with both
        ``gamma_in_sparse`` and ``gamma_hidden`` set, layers 1…L-1 are penalised twice.
        """
        return self._group_sparsity_over(range(len(self.features)))

    def _group_sparsity_over(self, layers: range) -> torch.Tensor:
        reference = self._spatial_weight(0)
        terms = [group_sparsity_norm(self._spatial_weight(layer), eps=1e-8) for layer in layers]
        return torch.stack(terms).sum() if terms else reference.new_zeros(())

    def regularizer(self) -> torch.Tensor:
        """``gamma_input·spatial_laplace + gamma_hidden·group_sparsity + gamma_temporal·temporal_smoothness
        + gamma_in_sparse·group_sparsity_0``; terms with a zero weight are not evaluated."""
        total = super().regularizer()
        if self.gamma_input != 0.0:
            total = total + self.gamma_input * self.spatial_laplace()
        if self.gamma_hidden != 0.0:
            total = total + self.gamma_hidden * self.group_sparsity()
        if self.gamma_temporal != 0.0:
            total = total + self.gamma_temporal * self.temporal_smoothness()
        if self.gamma_in_sparse != 0.0:
            total = total + self.gamma_in_sparse * self.group_sparsity_0()
        return total

    # ------------------------------------------------------------------------------------------- visualisation
    def plot_weight_visualization(self, layer: int, in_channel: int, out_channel: int) -> Figure:
        """Figure of the kernel from ``in_channel`` to ``out_channel`` in ``layer``."""
        if not 0 <= layer < len(self.features):
            raise ValueError(f"SimpleCoreWrapper: layer {layer} out of range; the core has {len(self.features)}.")
        conv = self._conv(layer)
        plot = getattr(conv, "plot_weights", None)
        if plot is None:
            raise NotImplementedError(f"{type(conv).__name__} has no weight plot.")
        return cast("Figure", plot(in_channel, out_channel))

    def save_weight_visualizations(self, folder_path: str, file_format: str = "jpg", state_suffix: str = "") -> None:
        """Write each layer's kernel plots into ``folder_path/weights_layer_{i}``."""
        for layer in range(len(self.features)):
            conv = self._conv(layer)
            save = getattr(conv, "save_weight_visualizations", None)
            if save is None:
                warnings.warn(
                    f"{type(conv).__name__} has no weight visualisation; layer {layer} skipped.", stacklevel=2
                )
                continue
            folder = Path(folder_path) / f"weights_layer_{layer}"
            folder.mkdir(parents=True, exist_ok=True)
            save(str(folder), file_format=file_format, state_suffix=state_suffix)
