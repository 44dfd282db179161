"""PCA of an LSTA library, projections onto the first two components, and the binned vector field.

Differences from the reference:

* PCA is a singular value decomposition in numpy (the reference needed scikit-learn, an undeclared dependency).
  The sign of each component is fixed so that its largest-magnitude pixel is positive.
* Image coordinates are mean-centred by default (``center=True``), so the image cloud sits around the origin;
  arrows (LSTA projections) are directions and are never centred.
* Binning keeps points that lie exactly on the upper edge (the reference dropped them), and arrow tails are the
  mean coordinates of the images in a bin, which equals the projection of the mean binned image.
* Responses must be one value per image ``(images,)``; the reference notebook passed the whole ``(images, time,
  cells)`` library, which mixed every cell into the response map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from openretina.errors import DataFormatError, DataShapeError

__all__ = [
    "BinnedVectorField",
    "bin_vector_field",
    "get_images_coordinate",
    "get_pc_from_pca",
    "project_onto_pcs",
]


def get_pc_from_pca(
    model: Any, channel: int, lsta_library: np.ndarray, plot: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First two principal components of the LSTAs of one channel.

    Input: ``lsta_library`` ``(images, channels, height, width)``. Returns ``(PC1, PC2, explained_variance_ratio)``
    with ``PC1``, ``PC2`` unit vectors of shape ``(height * width,)`` and the ratio ``(2,)`` of the total variance
    each explains. ``model`` is accepted for compatibility with the reference and not needed (the image shape
    comes from the library). ``plot`` draws both components.
    """
    library = np.asarray(lsta_library, dtype=np.float64)
    if library.ndim != 4 or not 0 <= channel < library.shape[1]:
        raise DataShapeError(
            f"get_pc_from_pca: expected lsta_library (images, channels, height, width) with channel {channel}, got "
            f"shape {library.shape}."
        )
    data = library[:, channel].reshape(len(library), -1)
    if min(data.shape) < 2:
        raise DataShapeError(f"get_pc_from_pca: need at least 2 LSTAs of at least 2 pixels, got {data.shape}.")
    _, singular_values, components = np.linalg.svd(data - data.mean(axis=0), full_matrices=False)
    variance = singular_values**2
    if variance.sum() == 0:
        raise DataFormatError(
            f"get_pc_from_pca: the LSTAs of channel {channel} are all identical, so they have no principal "
            "components; use more varied images or another cell."
        )
    pcs = components[:2] * np.sign(components[:2, np.abs(components[:2]).argmax(axis=1)].diagonal())[:, None]
    ratio = variance[:2] / variance.sum()
    if plot:
        from openretina.plotting.vector_field import plot_principal_components

        plot_principal_components(pcs[0], pcs[1], library.shape[2:], ratio)
    return pcs[0], pcs[1], ratio


def project_onto_pcs(vectors: np.ndarray, PC1: np.ndarray, PC2: np.ndarray) -> np.ndarray:
    """Dot products of each flattened vector with ``PC1`` and ``PC2``.

    Input: ``vectors`` ``(n, height, width)`` or ``(n, height * width)``. Output: ``(n, 2)``.
    """
    flat = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    basis = np.stack([np.asarray(PC1, dtype=np.float64).ravel(), np.asarray(PC2, dtype=np.float64).ravel()])
    if flat.shape[1] != basis.shape[1]:
        raise DataShapeError(
            f"project_onto_pcs: vectors have {flat.shape[1]} pixels but the components have {basis.shape[1]}; use "
            "images of the channel and size the PCA was computed on."
        )
    return flat @ basis.T


def get_images_coordinate(
    images: np.ndarray,
    PC1: np.ndarray,
    PC2: np.ndarray,
    plot: bool = False,
    *,
    center: bool = True,
) -> np.ndarray:
    """Position of each image in the plane of the first two LSTA components.

    Input: ``images`` ``(images, height, width)`` (one channel). Output: ``(images, 2)``, the projections of the
    images (minus their mean image if ``center``) onto ``PC1`` and ``PC2``. ``plot`` draws a scatter plot.
    """
    array = np.asarray(images, dtype=np.float64)
    if array.ndim != 3:
        raise DataShapeError(f"get_images_coordinate: expected images (images, height, width), got {array.shape}.")
    if center:
        array = array - array.mean(axis=0)
    coordinates = project_onto_pcs(array, PC1, PC2)
    if plot:
        from openretina.plotting.vector_field import plot_images_coordinate

        plot_images_coordinate(coordinates)
    return coordinates


@dataclass(frozen=True)
class BinnedVectorField:
    """The vector field averaged over a grid of bins; ``K`` = number of non-empty bins.

    * ``tails`` ``(K, 2)``: mean image coordinate per bin (arrow start).
    * ``vectors`` ``(K, 2)``: mean LSTA projection per bin (arrow direction and length).
    * ``bin_centers`` ``(K, 2)``, ``counts`` ``(K,)``: the bin's centre and how many images fell into it.
    * ``responses`` ``(K,)`` or None: mean response per bin.
    * ``x_edges`` ``(x_bins + 1,)``, ``y_edges`` ``(y_bins + 1,)``: the bin edges.
    """

    tails: np.ndarray
    vectors: np.ndarray
    bin_centers: np.ndarray
    counts: np.ndarray
    responses: np.ndarray | None
    x_edges: np.ndarray
    y_edges: np.ndarray


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value; the upper edge belongs to the last bin."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def bin_vector_field(
    images_coordinate: np.ndarray,
    vectors: np.ndarray,
    x_bins: int = 31,
    y_bins: int = 31,
    responses: np.ndarray | None = None,
) -> BinnedVectorField:
    """Average tails, vectors (and responses) over an ``x_bins x y_bins`` grid of equal bins spanning the tails.

    Input: ``images_coordinate`` ``(n, 2)``, ``vectors`` ``(n, 2)`` (e.g. LSTA projections), ``responses``
    ``(n,)``. Bins are listed in order of (x bin, y bin); empty bins are left out.
    """
    coordinates = np.asarray(images_coordinate, dtype=np.float64)
    arrows = np.asarray(vectors, dtype=np.float64)
    if coordinates.ndim != 2 or coordinates.shape[1] != 2 or arrows.shape != coordinates.shape or not len(arrows):
        raise DataShapeError(
            f"bin_vector_field: expected images_coordinate and vectors of the same shape (n, 2), n >= 1; got "
            f"{coordinates.shape} and {arrows.shape}."
        )
    if x_bins < 1 or y_bins < 1:
        raise ValueError(f"bin_vector_field: x_bins and y_bins must be >= 1, got {x_bins} and {y_bins}.")
    values = None
    if responses is not None:
        values = np.asarray(responses, dtype=np.float64)
        if values.shape != (len(coordinates),):
            raise DataShapeError(
                f"bin_vector_field: responses must hold one value per image, shape ({len(coordinates)},), got "
                f"{values.shape}. For one cell use e.g. response_library[:, w0:w1, cell_id].mean(axis=1)."
            )
    x_edges = np.linspace(coordinates[:, 0].min(), coordinates[:, 0].max(), x_bins + 1)
    y_edges = np.linspace(coordinates[:, 1].min(), coordinates[:, 1].max(), y_bins + 1)
    x_index, y_index = _bin_index(coordinates[:, 0], x_edges), _bin_index(coordinates[:, 1], y_edges)
    occupied, members = np.unique(x_index * y_bins + y_index, return_inverse=True)
    counts = np.bincount(members, minlength=len(occupied))

    def bin_mean(data: np.ndarray) -> np.ndarray:
        return np.stack([np.bincount(members, weights=column) for column in data.T], axis=1) / counts[:, None]

    x_of_bin, y_of_bin = occupied // y_bins, occupied % y_bins
    centers = np.stack(
        [(x_edges[x_of_bin] + x_edges[x_of_bin + 1]) / 2, (y_edges[y_of_bin] + y_edges[y_of_bin + 1]) / 2], axis=1
    )
    return BinnedVectorField(
        tails=bin_mean(coordinates),
        vectors=bin_mean(arrows),
        bin_centers=centers,
        counts=counts,
        responses=None if values is None else bin_mean(values[:, None])[:, 0],
        x_edges=x_edges,
        y_edges=y_edges,
    )
