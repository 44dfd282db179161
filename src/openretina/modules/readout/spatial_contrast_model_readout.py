"""Spatial-contrast readout (Sridhar et al. 2025): mean luminance and local contrast in each neuron's receptive field.

Each neuron has fixed spatial and temporal filters (e.g. from spike-triggered averages). The stimulus is filtered
in time per pixel, then the receptive-field-weighted mean ``I`` and standard deviation ``LSC`` of the filtered
stimulus are combined as ``r = a · softplus(b · (I + w · LSC) + c)`` with learned ``w, a, b, c`` per neuron.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataShapeError
from openretina.modules.readout.base import Readout, Reduction
from openretina.modules.readout.multi_readout import MultiReadoutBase

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["MultiSpatialContrastReadout", "SpatialContrastReadout"]

_WEIGHT_EPS = 1e-8
_MIN_VARIANCE = 1e-6


class SpatialContrastReadout(Readout):
    """Luminance + local spatial contrast model on a single-channel stimulus.

    Input: (batch, 1, time, height, width) stimulus (or a single-channel core output).
    Output: (batch, time - T_f + 1, neurons), ``T_f`` = temporal filter length (valid temporal filtering).

    ``spatial_filters`` (neurons, height, width) and ``temporal_filters`` (neurons, T_f) are fixed buffers; the
    temporal filter is applied as a cross-correlation (index 0 multiplies the oldest frame). The local contrast is
    ``sqrt(max(E_sf[f²] - E_sf[f]², 1e-6))``. Neurons are processed ``neuron_chunk_size`` at a time to bound
    memory. ``bias`` (frozen) only stores the mean activity; it does not enter the output.
    """

    spatial_filters: torch.Tensor
    temporal_filters: torch.Tensor
    sf_sums: torch.Tensor

    def __init__(
        self,
        in_shape: Sequence[int],
        outdims: int,
        spatial_filters: torch.Tensor,
        temporal_filters: torch.Tensor,
        w_init: float = 0.0,
        a_init: float = 4.0,
        b_init: float = 1.0,
        c_init: float = -5.0,
        mean_activity: torch.Tensor | None = None,
        neuron_chunk_size: int = 32,
    ) -> None:
        super().__init__()
        spatial = torch.as_tensor(spatial_filters, dtype=torch.float32)
        temporal = torch.as_tensor(temporal_filters, dtype=torch.float32)
        self.in_shape = tuple(int(s) for s in in_shape)
        self.outdims = int(outdims)
        if spatial.dim() != 3 or spatial.shape[0] != self.outdims:
            raise DataShapeError(
                f"SpatialContrastReadout: spatial_filters has shape {tuple(spatial.shape)}, expected "
                f"({self.outdims}, height, width)."
            )
        if temporal.dim() != 2 or temporal.shape[0] != self.outdims:
            raise DataShapeError(
                f"SpatialContrastReadout: temporal_filters has shape {tuple(temporal.shape)}, expected "
                f"({self.outdims}, filter_length)."
            )
        if neuron_chunk_size < 1:
            raise ValueError(f"neuron_chunk_size must be >= 1, got {neuron_chunk_size}.")
        self.neuron_chunk_size = neuron_chunk_size
        self.w = nn.Parameter(torch.full((self.outdims,), float(w_init)))
        self.nl_a = nn.Parameter(torch.full((self.outdims,), float(a_init)))
        self.nl_b = nn.Parameter(torch.full((self.outdims,), float(b_init)))
        self.nl_c = nn.Parameter(torch.full((self.outdims,), float(c_init)))
        self.bias = nn.Parameter(torch.zeros(self.outdims), requires_grad=False)
        self.register_buffer("spatial_filters", spatial.clone())
        self.register_buffer("temporal_filters", temporal.clone())
        self.register_buffer("sf_sums", spatial.sum(dim=(1, 2)))
        self.initialize(mean_activity)

    @property
    def features(self) -> torch.Tensor:
        """The contrast weights ``w`` (neurons,)."""
        return self.w

    def regularizer(self, reduction: Reduction = "sum") -> torch.Tensor:
        """This readout is unregularised: returns 0."""
        return torch.zeros((), device=self.w.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input: (batch, 1, time, height, width). Output: (batch, time - T_f + 1, neurons)."""
        height, width = self.spatial_filters.shape[1:]
        filter_length = self.temporal_filters.shape[1]
        if x.dim() != 5 or x.shape[1] != 1 or tuple(x.shape[3:]) != (height, width):
            raise DataShapeError(
                f"SpatialContrastReadout: expected (batch, 1, time, {height}, {width}) input, got {tuple(x.shape)}."
            )
        if x.shape[2] < filter_length:
            raise DataShapeError(
                f"SpatialContrastReadout: {x.shape[2]} frames are fewer than the temporal filter length "
                f"{filter_length}; pass at least {filter_length} frames."
            )
        chunks = []
        for start in range(0, self.outdims, self.neuron_chunk_size):
            neurons = slice(start, start + self.neuron_chunk_size)
            kernels = self.temporal_filters[neurons][:, None, :, None, None]  # (K, 1, T_f, 1, 1)
            filtered = F.conv3d(x, kernels)  # (batch, K, T_out, height, width)
            spatial = self.spatial_filters[neurons][None, :, None]  # (1, K, 1, height, width)
            norm = (self.sf_sums[neurons] + _WEIGHT_EPS)[None, :, None]
            intensity = (filtered * spatial).sum(dim=(3, 4)) / norm
            mean_square = (filtered.pow(2) * spatial).sum(dim=(3, 4)) / norm
            contrast = torch.sqrt(torch.clamp(mean_square - intensity.pow(2), min=_MIN_VARIANCE))
            w, a, b, c = (p[neurons][None, :, None] for p in (self.w, self.nl_a, self.nl_b, self.nl_c))
            chunks.append(a * F.softplus(b * (intensity + w * contrast) + c))  # (batch, K, T_out)
        return torch.cat(chunks, dim=1).transpose(1, 2)

    def number_of_neurons(self) -> int:
        """Number of neurons (``outdims``)."""
        return self.outdims

    def _plot_weight_for_neuron(self, neuron_id: int, axes: Sequence[Axes], add_titles: bool) -> None:
        axes[0].imshow(self.spatial_filters[neuron_id].cpu().numpy(), cmap="RdBu_r")
        axes[1].plot(self.temporal_filters[neuron_id].cpu().numpy())
        if add_titles:
            axes[0].set_title("Spatial filter")
            axes[1].set_title("Temporal filter")


class MultiSpatialContrastReadout(MultiReadoutBase):
    """One :class:`SpatialContrastReadout` per session, each with its own fixed filters.

    Input: (batch, 1, time, height, width). Output: (batch, time - T_f + 1, neurons of the session).
    """

    _base_readout_cls = SpatialContrastReadout

    def __init__(
        self,
        in_shape: Sequence[int],
        n_neurons_dict: Mapping[str, int],
        spatial_filters_dict: Mapping[str, torch.Tensor],
        temporal_filters_dict: Mapping[str, torch.Tensor],
        w_init: float = 0.0,
        a_init: float = 4.0,
        b_init: float = 1.0,
        c_init: float = -5.0,
        mean_activity_dict: Mapping[str, torch.Tensor] | None = None,
        readout_reg_avg: bool = False,
        neuron_chunk_size: int = 32,
    ) -> None:
        super().__init__(
            in_shape,
            {},
            readout_reg_avg=readout_reg_avg,
            w_init=w_init,
            a_init=a_init,
            b_init=b_init,
            c_init=c_init,
            neuron_chunk_size=neuron_chunk_size,
        )
        self.add_sessions(n_neurons_dict, mean_activity_dict, spatial_filters_dict, temporal_filters_dict)

    def add_sessions(
        self,
        n_neurons_dict: Mapping[str, int],
        mean_activity_dict: Mapping[str, torch.Tensor] | None = None,
        spatial_filters_dict: Mapping[str, torch.Tensor] | None = None,
        temporal_filters_dict: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Add sessions; each needs an entry in ``spatial_filters_dict`` and ``temporal_filters_dict``."""
        spatial_filters_dict = spatial_filters_dict or {}
        temporal_filters_dict = temporal_filters_dict or {}
        missing = [s for s in n_neurons_dict if s not in spatial_filters_dict or s not in temporal_filters_dict]
        if missing:
            raise ValueError(
                f"MultiSpatialContrastReadout: sessions {missing} have no spatial or temporal filters; "
                "add them to spatial_filters_dict and temporal_filters_dict."
            )
        filters = {
            session: {
                "spatial_filters": spatial_filters_dict[session],
                "temporal_filters": temporal_filters_dict[session],
            }
            for session in n_neurons_dict
        }
        self._add_sessions(n_neurons_dict, mean_activity_dict, per_session_kwargs=filters)
