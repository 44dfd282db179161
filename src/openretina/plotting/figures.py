"""Small figure helpers: saving with a date prefix, legends without repeated labels, lazy pyplot import."""

from __future__ import annotations

import datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["legend_without_duplicate_labels", "pyplot", "save_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot``, imported on first use so that importing openretina never loads matplotlib."""
    import matplotlib.pyplot as plt

    return plt


def save_figure(filename: str, folder: str | PathLike[str], fig: Figure | None = None) -> Path:
    """Save ``fig`` (default: the current figure) as ``folder/YYYY-MM-DD_filename``, then close it.

    The folder is created if needed. Returns the path written.
    """
    plt = pyplot()
    figure = fig if fig is not None else plt.gcf()
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{datetime.date.today().isoformat()}_{filename}"
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path


def legend_without_duplicate_labels(ax: Axes | None = None) -> None:
    """Draw a legend on ``ax`` (default: current axes) with the first handle of each label only."""
    axes = ax if ax is not None else pyplot().gca()
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(reversed(labels), reversed(handles)))  # reversed: the first occurrence wins
    ordered = [label for index, label in enumerate(labels) if label not in labels[:index]]
    axes.legend([unique[label] for label in ordered], ordered)
