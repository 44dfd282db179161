"""Grids of receptive-field maps (e.g. from :func:`openretina.insilico.receptive_fields.visualize_receptive_fields`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from openretina.errors import DataShapeError
from openretina.plotting.colours import to_numpy
from openretina.plotting.figures import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_receptive_field_grid"]


def plot_receptive_field_grid(
    maps: np.ndarray | torch.Tensor,
    ncols: int = 6,
    titles: Sequence[str] | None = None,
    neuron_ids: Sequence[int] | None = None,
    panel_size: float = 2.0,
    shared_scale: bool = False,
) -> Figure:
    """One ``RdBu_r`` panel per map, colour limits symmetric around zero (white = no effect).

    Input: ``maps`` ``(N, H, W)``. ``neuron_ids`` picks and titles a subset ("Neuron i"); ``titles`` overrides
    the titles. ``shared_scale`` uses one colour range for all panels (compares strengths), otherwise each panel
    uses its own max ``|value|`` (compares shapes). Unused panels are hidden. Returns the figure.
    """
    array = to_numpy(maps)
    if array.ndim != 3:
        raise DataShapeError(f"plot_receptive_field_grid: expected maps (neurons, height, width), got {array.shape}.")
    ids = list(range(len(array))) if neuron_ids is None else list(neuron_ids)
    labels = list(titles) if titles is not None else [f"Neuron {i}" for i in ids]
    if len(labels) != len(ids):
        raise DataShapeError(f"{len(labels)} titles for {len(ids)} maps; give one title per map.")
    if not ids:
        raise DataShapeError("plot_receptive_field_grid: no maps to plot.")
    columns = max(1, min(ncols, len(ids)))
    rows = math.ceil(len(ids) / columns)
    fig, axes = pyplot().subplots(rows, columns, figsize=(panel_size * columns, panel_size * rows), squeeze=False)
    shared = float(np.abs(array[ids]).max()) or 1.0
    for ax, index, label in zip(axes.flat, ids, labels):
        limit = shared if shared_scale else (float(np.abs(array[index]).max()) or 1.0)
        ax.imshow(array[index], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(label, fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig
