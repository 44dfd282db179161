"""Figures of the LSTA vector-field analysis (:mod:`openretina.insilico.vector_field_analysis`).

Differences from the reference: axis limits and arrow scales use absolute values (the reference used the signed
maximum and truncated limits to integers); the longest arrow is drawn a fixed fraction of the plot (one arrow per
image) or of a bin (binned field) long, whatever the units; binning keeps points on the upper bin edge; the response
map needs one response per image and is skipped with a warning when fewer than three bins can be interpolated.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from openretina.errors import DataShapeError
from openretina.insilico.vector_field_analysis.projection import bin_vector_field, project_onto_pcs
from openretina.plotting.figures import pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_clean_vectorfield",
    "plot_images_coordinate",
    "plot_pc_insets",
    "plot_principal_components",
    "plot_untreated_vectorfield",
]

_ARROW_FRACTION = 0.1  # one arrow per image: the longest spans this fraction of the half-width of the plot
_ARROW_BIN_FRACTION = 0.9  # binned arrows: the longest spans this fraction of a bin, so arrows do not overlap


def _show_component(ax: Axes, component: np.ndarray, title: str) -> None:
    limit = float(np.abs(component).max()) or 1.0
    ax.imshow(component, cmap="bwr", vmin=-limit, vmax=limit)
    ax.set_title(title, fontsize=20)
    ax.set_xticks([])
    ax.set_yticks([])


def _titles(explained_variance: Sequence[float] | np.ndarray | None) -> tuple[str, str]:
    if explained_variance is None:
        return "PC1", "PC2"
    first, second = (100 * float(value) for value in explained_variance[:2])
    return f"PC1 ({first:.1f}%)", f"PC2 ({second:.1f}%)"


def plot_principal_components(
    PC1: np.ndarray,
    PC2: np.ndarray,
    image_shape: Sequence[int],
    explained_variance: Sequence[float] | np.ndarray | None = None,
) -> Figure:
    """Both components side by side as images ``image_shape`` = (height, width), symmetric ``bwr`` colours."""
    fig, axes = pyplot().subplots(1, 2, figsize=(8, 4))
    for ax, component, title in zip(axes, (PC1, PC2), _titles(explained_variance)):
        _show_component(ax, np.asarray(component).reshape(tuple(image_shape)), title)
    return fig


def plot_images_coordinate(images_coordinate: np.ndarray) -> Figure:
    """Scatter plot of image coordinates ``(images, 2)`` in the (PC1, PC2) plane."""
    fig, ax = pyplot().subplots(figsize=(5, 5))
    coordinates = np.asarray(images_coordinate)
    ax.scatter(coordinates[:, 0], coordinates[:, 1], s=4)
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    return fig


def plot_pc_insets(
    fig: Figure,
    PC1: np.ndarray,
    PC2: np.ndarray,
    x_size: int,
    y_size: int,
    explained_variance: Sequence[float] | np.ndarray | None = None,
) -> None:
    """Add PC1 (right, at the end of the x axis) and PC2 (top) as small images of ``y_size x x_size`` pixels."""
    for component, position, title in zip((PC1, PC2), ((0.825, 0.425), (0.425, 0.825)), _titles(explained_variance)):
        inset = fig.add_axes((*position, 0.15, 0.15))
        _show_component(inset, np.asarray(component).reshape(y_size, x_size), title)


def _channel_lstas(lsta_library: np.ndarray, channel: int) -> np.ndarray:
    library = np.asarray(lsta_library)
    if library.ndim != 4 or not 0 <= channel < library.shape[1]:
        raise DataShapeError(
            f"expected lsta_library (images, channels, height, width) with channel {channel}, got {library.shape}."
        )
    return library[:, channel]


def _arrow_scale(vectors: np.ndarray, length: float) -> float:
    """``quiver`` scale (vector units per data unit) that draws the longest arrow ``length`` data units long."""
    longest = float(np.linalg.norm(vectors, axis=1).max()) if len(vectors) else 0.0
    return longest / length if longest > 0 and length > 0 else 1.0


def _square_limits(ax: Axes, limit: float) -> None:
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")


def plot_untreated_vectorfield(
    lsta_library: np.ndarray,
    channel: int,
    PC1: np.ndarray,
    PC2: np.ndarray,
    images_coordinate: np.ndarray,
) -> Figure:
    """One arrow per image: from its coordinate, along its LSTA projected onto (PC1, PC2); PC insets on the side.

    Input: ``lsta_library`` ``(images, channels, height, width)``, ``images_coordinate`` ``(images, 2)``.
    """
    lstas = _channel_lstas(lsta_library, channel)
    tails = np.asarray(images_coordinate, dtype=np.float64)
    if tails.shape != (len(lstas), 2):
        raise DataShapeError(f"images_coordinate must be ({len(lstas)}, 2), one row per LSTA; got {tails.shape}.")
    vectors = project_onto_pcs(lstas, PC1, PC2)
    limit = 1.1 * float(np.abs(tails).max()) or 1.0
    fig, ax = pyplot().subplots(figsize=(20, 15))
    ax.quiver(
        tails[:, 0], tails[:, 1], vectors[:, 0], vectors[:, 1],
        angles="xy", scale_units="xy", scale=_arrow_scale(vectors, _ARROW_FRACTION * limit), alpha=0.5,
    )  # fmt: skip
    _square_limits(ax, limit)
    ax.axis("off")
    plot_pc_insets(fig, PC1, PC2, lstas.shape[2], lstas.shape[1])
    return fig


def _draw_response_map(fig: Figure, ax: Axes, centers: np.ndarray, responses: np.ndarray, limit: float) -> None:
    from scipy.interpolate import griddata
    from scipy.spatial import QhullError

    grid = np.linspace(-limit, limit, 100)
    grid_x, grid_y = np.meshgrid(grid, grid)
    if len(centers) < 3:
        warnings.warn(f"only {len(centers)} populated bins: no response map drawn.", stacklevel=3)
        return
    try:
        surface = griddata(centers, responses, (grid_x, grid_y), method="linear")
    except QhullError:  # all bins on one line: nothing to interpolate over an area
        warnings.warn("the populated bins lie on one line: no response map drawn.", stacklevel=3)
        return
    mesh = ax.pcolormesh(grid_x, grid_y, surface, cmap="viridis", alpha=0.4, shading="gouraud")
    fig.colorbar(mesh, ax=ax, label="Response magnitude", location="left", shrink=0.6)  # the right holds PC1


def _draw_axis_arrows(ax: Axes, limit: float) -> None:
    for dx, dy in ((limit, 0.0), (0.0, limit)):
        ax.annotate("", xy=(dx * 0.95, dy * 0.95), xytext=(-dx * 0.95, -dy * 0.95), arrowprops={"arrowstyle": "->"})


def plot_clean_vectorfield(
    lsta_library: np.ndarray,
    channel: int,
    PC1: np.ndarray,
    PC2: np.ndarray,
    images: np.ndarray,
    images_coordinate: np.ndarray,
    explained_variance: Sequence[float] | np.ndarray | None,
    x_bins: int = 31,
    y_bins: int = 31,
    responses: np.ndarray | None = None,
) -> Figure:
    """The binned vector field (see :func:`~openretina.insilico.vector_field_analysis.bin_vector_field`).

    Input: ``lsta_library`` ``(images, channels, height, width)``, ``images`` ``(images, height, width)`` (checked
    against the other inputs; the arrow tails are the mean coordinates per bin, which equals the projection of the
    mean binned image), ``images_coordinate`` ``(images, 2)``, ``responses`` ``(images,)`` (one value per image,
    e.g. ``response_library[:, w0:w1, cell_id].mean(axis=1)``), drawn as an interpolated map under the arrows.
    """
    lstas = _channel_lstas(lsta_library, channel)
    if np.shape(images)[0] != len(lstas):
        raise DataShapeError(f"{np.shape(images)[0]} images for {len(lstas)} LSTAs; give one image per LSTA.")
    field = bin_vector_field(images_coordinate, project_onto_pcs(lstas, PC1, PC2), x_bins, y_bins, responses)
    limit = 1.1 * float(max(np.abs(field.tails).max(), np.abs(field.bin_centers).max())) or 1.0
    bin_size = min(np.diff(field.x_edges[:2])[0], np.diff(field.y_edges[:2])[0])
    arrow_length = _ARROW_BIN_FRACTION * bin_size if bin_size > 0 else _ARROW_FRACTION * limit
    fig, ax = pyplot().subplots(figsize=(20, 15))
    if field.responses is not None:
        _draw_response_map(fig, ax, field.bin_centers, field.responses, limit)
    ax.quiver(
        field.tails[:, 0], field.tails[:, 1], field.vectors[:, 0], field.vectors[:, 1],
        angles="xy", scale_units="xy", scale=_arrow_scale(field.vectors, arrow_length), color="black",
    )  # fmt: skip
    _square_limits(ax, limit)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks([])
    ax.set_yticks([])
    _draw_axis_arrows(ax, limit)
    plot_pc_insets(fig, PC1, PC2, lstas.shape[2], lstas.shape[1], explained_variance)
    return fig
