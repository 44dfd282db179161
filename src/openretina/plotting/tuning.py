"""Tuning plots: polar direction plots, tuning curves and the chromatic response-gradient field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from openretina.errors import DataShapeError
from openretina.plotting.figures import pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from openretina.insilico.tuning_analyses.tuning_curves import TuningCurve

__all__ = ["plot_tuning_curve", "plot_vector_field_resp_iso", "polar_plot_of_direction_of_motion_responses"]


def polar_plot_of_direction_of_motion_responses(
    direction_in_degree: Sequence[float], peak_response_per_directions: Sequence[float], ax: Axes | None = None
) -> Figure:
    """Closed polar curve of the response per motion direction, 0° at North, clockwise.

    Tick positions are the tested directions and their labels match them (the reference set labels only).
    Pass a polar ``ax`` to draw into an existing figure; otherwise a 6x6 figure is created. Returns the figure.
    """
    if len(direction_in_degree) != len(peak_response_per_directions) or not direction_in_degree:
        raise DataShapeError(
            f"need one response per direction, got {len(direction_in_degree)} directions and "
            f"{len(peak_response_per_directions)} responses."
        )
    order = np.argsort(np.asarray(direction_in_degree, dtype=np.float64))
    directions = np.asarray(direction_in_degree, dtype=np.float64)[order]
    responses = np.asarray(peak_response_per_directions, dtype=np.float64)[order]
    polar: Any = ax if ax is not None else pyplot().figure(figsize=(6, 6)).add_subplot(projection="polar")
    angles = np.deg2rad(np.append(directions, directions[0]))
    polar.plot(angles, np.append(responses, responses[0]), marker="o")
    polar.set_theta_zero_location("N")
    polar.set_theta_direction(-1)
    polar.set_xticks(np.deg2rad(directions))
    polar.set_xticklabels([f"{value:g}°" for value in directions])
    return polar.figure


def plot_tuning_curve(
    curve: TuningCurve, neurons: Sequence[int] | None = None, ax: Axes | None = None, log_x: bool = False
) -> Figure:
    """Responses against the tested values, one line per neuron (default: all, up to 10).

    Colour tuning (``values`` of shape ``(V, C)``) is drawn against the condition index, labelled with the weights.
    """
    if ax is None:
        _, ax = pyplot().subplots(figsize=(5, 4))
    chosen = list(neurons) if neurons is not None else list(range(min(10, curve.responses.shape[1])))
    values = np.asarray(curve.values)
    x = np.arange(len(values)) if values.ndim == 2 else values
    for neuron in chosen:
        ax.plot(x, curve.responses[:, neuron], marker="o", label=f"Neuron {neuron}")
    if values.ndim == 2:
        ax.set_xticks(x)
        ax.set_xticklabels(["(" + ", ".join(f"{w:g}" for w in row) + ")" for row in values], rotation=45)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(curve.parameter.replace("_", " "))
    ax.set_ylabel("Response")
    ax.legend(fontsize=7)
    return ax.figure  # type: ignore[return-value]


def plot_vector_field_resp_iso(
    x: np.ndarray,
    y: np.ndarray,
    gradient_dict: np.ndarray,
    resp_dict: np.ndarray,
    normalize_response: bool = False,
    rc_dict: Mapping[str, Any] | None = None,
    cmap_lines: str = "hot_r",
    cmap_fill: str = "Greys",
    n_lines: int = 10,
) -> Figure:
    """Iso-response contours with the (unit-length) response gradient as arrows, over two channel contrasts.

    Input: ``x`` ``(n,)`` contrasts of channel 0 (green, horizontal axis), ``y`` ``(m,)`` of channel 1 (UV,
    vertical axis), ``gradient_dict`` ``(2, n, m)`` and ``resp_dict`` ``(n, m)`` as returned by
    :func:`~openretina.insilico.tuning_analyses.get_gradient_grid` (first grid axis = channel 0).
    ``normalize_response`` shows responses in percent of the maximum. Border grid points get no arrow.
    """
    plt = pyplot()
    gradients, responses = np.asarray(gradient_dict), np.asarray(resp_dict)
    xs, ys = np.asarray(x), np.asarray(y)
    if responses.shape != (len(xs), len(ys)) or gradients.shape != (2, *responses.shape):
        raise DataShapeError(
            f"expected resp_dict ({len(xs)}, {len(ys)}) and gradient_dict (2, {len(xs)}, {len(ys)}), got "
            f"{responses.shape} and {gradients.shape}."
        )
    z = responses.T  # rows follow y (UV), columns follow x (green)
    if normalize_response:
        z = 100 * z / z.max()
    grid_x, grid_y = np.meshgrid(xs, ys)
    levels = np.linspace(z.min(), z.max(), n_lines)
    with plt.rc_context(dict(rc_dict or {})):
        fig, ax = plt.subplots()
        if levels[-1] > levels[0]:
            ax.contourf(grid_x, grid_y, z, levels=levels, cmap=cmap_fill)
            lines = ax.contour(grid_x, grid_y, z, levels=levels, cmap=cmap_lines)
            ax.clabel(lines, fmt="%1.0f", colors="red", fontsize=5)
        ax.set_aspect("equal")
        for i in range(1, len(xs) - 1):
            for j in range(1, len(ys) - 1):
                vector = gradients[:, i, j]
                length = np.linalg.norm(vector)
                if length > 0:
                    dx, dy = 0.1 * vector / length
                    ax.arrow(xs[i], ys[j], dx, dy, color="grey", head_width=0.03)
        ax.set_xlabel("Green contrast")
        ax.set_ylabel("UV contrast")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig
