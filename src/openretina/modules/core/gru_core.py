"""Convolutional core with optional per-session temporal speeds, 1×1×1 projections and a recurrent GRU layer.

Differences from the reference (all weak points there, fixed here and documented on the class):

* layer ``l`` is padded with its *own* spatial kernel size (the reference used layer ``l-1``'s, so layer 1
  was never padded);
* ``final_nonlinearity=False`` removes only the last layer's nonlinearity (the reference also removed
  layer 0's);
* ``use_gru=True`` without ``gru_kwargs`` is a clear error, and even GRU kernels work (see
  :class:`~openretina.modules.layers.gru.ConvGRUCell`);
* :attr:`ConvGRUCore.outchannels` is the real number of output channels;
* a ``data_key`` without batch adaptation is ignored instead of crashing inside the convolutions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from openretina.errors import DataFormatError, DataShapeError
from openretina.modules.core._shapes import ConvPadding, padded_conv_length
from openretina.modules.core.base_core import Core3d, spatial_weight_of
from openretina.modules.layers.convolutions import (
    STSeparableBatchConv3d,
    TorchFullConv3D,
    compute_temporal_kernel,
    get_conv_class,
    temporal_smoothing,
)
from openretina.modules.layers.gru import GRU_Module
from openretina.modules.layers.regularizers import FlatLaplaceL23dnorm, TimeLaplaceL23dnorm, group_sparsity_norm
from openretina.modules.layers.scaling import Bias3DLayer, FiLM, Scale3DLayer

__all__ = ["ConditionedGRUCore", "ConvGRUCore"]

# Group-sparsity epsilon, as in `group_sparsity0`. The reference used none in `group_sparsity` (NaN for an
# all-zero output channel); the relative change is about eps / (2·‖W[o]‖²), below 1e-5 at initialisation.
_SPARSITY_EPS = 1e-8


def _per_layer(values: int | Sequence[int], n_layers: int, what: str) -> tuple[int, ...]:
    """Broadcast a scalar (or a 1-element sequence) to every layer; longer sequences keep their first entries."""
    sizes = (int(values),) if isinstance(values, int) else tuple(int(v) for v in values)
    if len(sizes) == 1:
        return sizes * n_layers
    if len(sizes) < n_layers:
        raise ValueError(f"ConvGRUCore: {what} has {len(sizes)} entries for {n_layers} layers: {sizes}.")
    return sizes[:n_layers]


class ConvGRUCore(Core3d):
    """Stacked space-time convolutions, optionally followed by a convolutional GRU over time.

    Layers ``features.layer{l}`` = ``conv`` → ``norm`` (BatchNorm3d, if ``batch_norm``) → ``bias`` (only if
    ``bias and not batch_norm_scale``) or ``scale`` (only if ``batch_norm_scale and not bias``) → ``nonlin``
    (``torch.nn.<nonlinearity>``; every layer except, with ``final_nonlinearity=False``, the last).
    ``use_projections`` inserts ``features.projection`` (1×1×1 conv + nonlinearity) after layer 0;
    ``use_gru`` appends ``features.gru`` (:class:`~openretina.modules.layers.gru.GRU_Module`, built from
    ``gru_kwargs``). With ``batch_adaptation`` each session of ``n_neurons_dict`` gets a learnable log
    temporal speed ``log_speed_<session>`` shared by all convolutions and selected by ``data_key``.

    Padding: ``input_padding`` pads layer 0 spatially by ``k//2`` (never in time, so the core stays causal);
    ``hidden_padding`` does the same for layers ≥ 1, each with its own kernel size.

    Input: (batch, channels[0], time, height, width). Output: (batch, outchannels, time', height', width')
    with ``time' = time - Σ (k_t - 1)`` (no frames are cut), see :meth:`output_shape`.
    """

    def __init__(
        self,
        channels: Sequence[int],
        n_neurons_dict: Mapping[str, int] | None = None,
        temporal_kernel_sizes: int | Sequence[int] = (21,),
        spatial_kernel_sizes: int | Sequence[int] = (14,),
        gamma_hidden: float = 0.0,
        gamma_input: float = 0.0,
        gamma_in_sparse: float = 0.0,
        gamma_temporal: float = 0.0,
        final_nonlinearity: bool = True,
        bias: bool = True,
        input_padding: bool = False,
        hidden_padding: bool = True,
        batch_norm: bool = True,
        batch_norm_scale: bool = True,
        batch_norm_momentum: float = 0.1,
        laplace_padding: int | None = 0,
        batch_adaptation: bool = False,
        use_avg_reg: bool = False,
        nonlinearity: str = "ELU",
        convolution_type: str = "custom_separable",
        use_gru: bool = False,
        use_projections: bool = False,
        gru_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,  # other reference config keys (e.g. cut_first_n_frames) are accepted and ignored
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) < 2:
            raise ValueError(f"ConvGRUCore: channels must list the input and at least one layer, got {channels}.")
        n_layers = len(channels) - 1
        if batch_adaptation and not n_neurons_dict:
            raise ValueError("ConvGRUCore: batch_adaptation=True needs n_neurons_dict to know the session names.")
        if use_gru and gru_kwargs is None:
            raise ValueError(
                "ConvGRUCore: use_gru=True needs gru_kwargs (rec_channels, input_kern, rec_kern, ...) for the GRU."
            )
        if not hasattr(nn, nonlinearity):
            raise ValueError(f"ConvGRUCore: nonlinearity {nonlinearity!r} is not a torch.nn module name.")

        self.channels = channels
        self.temporal_kernel_sizes = _per_layer(temporal_kernel_sizes, n_layers, "temporal_kernel_sizes")
        self.spatial_kernel_sizes = _per_layer(spatial_kernel_sizes, n_layers, "spatial_kernel_sizes")
        self.gamma_hidden = gamma_hidden
        self.gamma_input = gamma_input
        self.gamma_in_sparse = gamma_in_sparse
        self.gamma_temporal = gamma_temporal
        self.use_avg_reg = use_avg_reg
        self.batch_adaptation = batch_adaptation
        self.convolution_type = convolution_type
        self.nonlinearity = nonlinearity
        self.use_gru = use_gru
        self.use_projections = use_projections
        self.gru_kwargs = dict(gru_kwargs) if gru_kwargs is not None else None
        self.conv_class = get_conv_class(convolution_type)
        self.paddings: tuple[ConvPadding, ...] = tuple(
            (0, k // 2, k // 2) if (input_padding if layer == 0 else hidden_padding) else 0
            for layer, k in enumerate(self.spatial_kernel_sizes)
        )

        self._input_weights_regularizer_spatial = FlatLaplaceL23dnorm(padding=laplace_padding)
        self._input_weights_regularizer_temporal = TimeLaplaceL23dnorm(padding=laplace_padding)

        # One Parameter per session, registered on the core and shared with every convolution.
        log_speed_dict: dict[str, nn.Parameter] = {}
        if batch_adaptation and n_neurons_dict:
            for session in n_neurons_dict:
                log_speed_dict[f"log_speed_{session}"] = nn.Parameter(torch.zeros(1))
        for name, parameter in log_speed_dict.items():
            self.register_parameter(name, parameter)
        self.sessions = tuple(n_neurons_dict) if batch_adaptation and n_neurons_dict else ()

        self.features = nn.Sequential()
        for layer in range(n_layers):
            last = layer == n_layers - 1
            self.features.add_module(
                f"layer{layer}",
                self._build_layer(
                    layer,
                    log_speed_dict,
                    with_nonlinearity=final_nonlinearity or not last,
                    bias=bias,
                    batch_norm=batch_norm,
                    batch_norm_scale=batch_norm_scale,
                    momentum=batch_norm_momentum,
                ),
            )
            if layer == 0 and use_projections:
                projection = TorchFullConv3D(channels[1], channels[1], log_speed_dict, 1, 1, bias=False)
                self.features.add_module("projection", nn.Sequential(projection, getattr(nn, nonlinearity)()))
        if use_gru:
            self.features.add_module("gru", GRU_Module(input_channels=channels[-1], **cast(dict, self.gru_kwargs)))
        self.initialize()

    def _build_layer(
        self,
        layer: int,
        log_speed_dict: dict[str, nn.Parameter],
        with_nonlinearity: bool,
        bias: bool,
        batch_norm: bool,
        batch_norm_scale: bool,
        momentum: float,
    ) -> nn.Sequential:
        out_channels = self.channels[layer + 1]
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        parts["conv"] = self.conv_class(
            self.channels[layer],
            out_channels,
            log_speed_dict,
            self.temporal_kernel_sizes[layer],
            self.spatial_kernel_sizes[layer],
            bias=False,
            padding=self.paddings[layer],
        )
        if batch_norm:
            parts["norm"] = nn.BatchNorm3d(out_channels, momentum=momentum, affine=bias and batch_norm_scale)
            if bias and not batch_norm_scale:
                parts["bias"] = Bias3DLayer(out_channels)
            elif batch_norm_scale and not bias:
                parts["scale"] = Scale3DLayer(out_channels)
        if with_nonlinearity:
            parts["nonlin"] = getattr(nn, self.nonlinearity)()
        return nn.Sequential(parts)

    # ------------------------------------------------------------------------------------------------ shapes
    @property
    def outchannels(self) -> int:
        """Number of output channels (the GRU's recurrent channels when it is used)."""
        if self.use_gru:
            return cast(GRU_Module, self.features.gru).gru.rec_channels
        return self.channels[-1]

    def _conv_layers(self) -> list[nn.Module]:
        return [cast(nn.Module, module.conv) for module in self.features if hasattr(module, "conv")]

    def _temporal_kernel(self, layer: int) -> int:
        return 1 if self.convolution_type == "time_independent" else self.temporal_kernel_sizes[layer]

    def number_of_cut_frames(self) -> int:
        """Σ (k_t − 1) over the conv layers (no temporal padding, no explicit cut)."""
        return sum(self._temporal_kernel(layer) - 1 for layer in range(len(self.channels) - 1))

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """(outchannels, T', H', W') for one input of shape (C, T, H, W), computed without running the core."""
        _, time, height, width = (int(v) for v in input_shape)
        for layer in range(len(self.channels) - 1):
            spatial = self.spatial_kernel_sizes[layer]
            time = padded_conv_length(time, self._temporal_kernel(layer), self.paddings[layer], 0)
            height = padded_conv_length(height, spatial, self.paddings[layer], 1)
            width = padded_conv_length(width, spatial, self.paddings[layer], 2)
        if self.use_gru:
            shrink = cast(GRU_Module, self.features.gru).gru._shrinkage
            height, width = height - shrink, width - shrink
        return (self.outchannels, time, height, width)

    # ----------------------------------------------------------------------------------------------- forward
    def forward(self, input_: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        """Input: (batch, channels[0], time, height, width). Output: (batch, outchannels, time', height', width').

        ``data_key`` selects the session's temporal speed when ``batch_adaptation`` is on; otherwise it is
        ignored.
        """
        self.check_input(input_, self.channels[0])
        self.check_spatial_size(input_)
        session = self._session_for(data_key)
        x = input_
        for module in self.features:
            x = module((x, session))
        return x

    def _session_for(self, data_key: str | None) -> str | None:
        if not self.batch_adaptation or data_key is None:
            return None
        if data_key not in self.sessions:
            raise DataFormatError(
                f"ConvGRUCore: unknown session {data_key!r}; this core has temporal speeds for {list(self.sessions)}."
            )
        return data_key

    # ------------------------------------------------------------------------------------------ regularisation
    def spatial_laplace(self) -> torch.Tensor:
        """Laplace roughness of layer 0's spatial kernels (mean aggregation if ``use_avg_reg``)."""
        return self._input_weights_regularizer_spatial(spatial_weight_of(self._conv_layers()[0]), avg=self.use_avg_reg)

    def group_sparsity(self) -> torch.Tensor:
        """Group sparsity of the spatial kernels of *every* conv layer, layer 0 included (as the reference)."""
        terms = [group_sparsity_norm(spatial_weight_of(conv), eps=_SPARSITY_EPS) for conv in self._conv_layers()]
        return torch.stack(terms).sum()

    def group_sparsity0(self) -> torch.Tensor:
        """Group sparsity of layer 0's full space-time kernel (temporal kernel at the default speed)."""
        conv = cast(STSeparableBatchConv3d, self._conv_layers()[0])
        temporal = compute_temporal_kernel(
            torch.zeros(1, device=conv.sin_weights.device),
            conv.sin_weights,
            conv.cos_weights,
            self.temporal_kernel_sizes[0],
            getattr(conv, "subsampling_factor", 3),
        )
        return group_sparsity_norm(temporal * conv.weight_spatial, eps=_SPARSITY_EPS)

    def temporal_smoothness(self) -> torch.Tensor:
        """Σ over conv layers of ``temporal_smoothing(sin_weights, cos_weights)``."""
        convs = [cast(STSeparableBatchConv3d, conv) for conv in self._conv_layers()]
        return torch.stack([temporal_smoothing(conv.sin_weights, conv.cos_weights) for conv in convs]).sum()

    def regularizer(self) -> torch.Tensor:
        """``gamma_hidden·group_sparsity + gamma_input·spatial_laplace + gamma_temporal·temporal_smoothness +
        gamma_in_sparse·group_sparsity0``; zero for conv types other than ``custom_separable`` (as the
        reference), and terms with a zero weight are not evaluated."""
        total = super().regularizer()
        if self.conv_class is not STSeparableBatchConv3d:
            return total
        if self.gamma_hidden != 0.0:
            total = total + self.gamma_hidden * self.group_sparsity()
        if self.gamma_input != 0.0:
            total = total + self.gamma_input * self.spatial_laplace()
        if self.gamma_temporal != 0.0:
            total = total + self.gamma_temporal * self.temporal_smoothness()
        if self.gamma_in_sparse != 0.0:
            total = total + self.gamma_in_sparse * self.group_sparsity0()
        return total


class ConditionedGRUCore(ConvGRUCore):
    """:class:`ConvGRUCore` whose conv layers are modulated by a conditioning vector through FiLM.

    A ``film_{i}`` module (:class:`~openretina.modules.layers.scaling.FiLM`) follows every feature ``i`` that
    has both a ``conv`` and a ``norm``. Input: ``x`` (batch, channels[0], time, height, width) and
    ``conditioning`` (batch, cond_dim) (zeros if omitted). Output: as :class:`ConvGRUCore`.
    """

    def __init__(self, cond_dim: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cond_dim = cond_dim
        self._film_indices: list[int] = []
        hidden = iter(self.channels[1:])
        for index, module in enumerate(self.features):
            if hasattr(module, "conv") and hasattr(module, "norm"):
                self.add_module(f"film_{index}", FiLM(next(hidden), cond_dim))
                self._film_indices.append(index)

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, conditioning: torch.Tensor | None = None, data_key: str | None = None
    ) -> torch.Tensor:
        """Run the core, applying each layer's FiLM after the layer (argument order as the reference)."""
        self.check_input(x, self.channels[0])
        self.check_spatial_size(x)
        if conditioning is None:
            conditioning = x.new_zeros(x.shape[0], self.cond_dim)
        elif conditioning.shape != (x.shape[0], self.cond_dim):
            raise DataShapeError(
                f"ConditionedGRUCore: conditioning must have shape ({x.shape[0]}, {self.cond_dim}) "
                f"(batch, cond_dim), got {tuple(conditioning.shape)}."
            )
        session = self._session_for(data_key)
        for index, module in enumerate(self.features):
            x = module((x, session))
            if index in self._film_indices:
                x = getattr(self, f"film_{index}")(x, conditioning)
        return x
