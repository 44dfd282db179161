"""MEI and MDS figures: stimulus composition next to the model's response to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from openretina.errors import DataShapeError
from openretina.plotting.figures import pyplot
from openretina.plotting.stimulus import plot_stimulus_composition

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_mds_panels", "plot_mei"]


def _response_trace(model: nn.Module, stimulus: torch.Tensor, neuron: int, data_key: str | None) -> np.ndarray:
    from openretina.insilico.tuning_analyses.model_runs import model_responses

    return model_responses(model, stimulus[None], data_key)[0, :, neuron].numpy()


def plot_mei(
    stimulus: torch.Tensor | np.ndarray,
    model: nn.Module | None = None,
    neuron: int | None = None,
    data_key: str | None = None,
    *,
    frame_rate: float | None = None,
    highlight_x_list: Sequence[tuple[int, int]] | None = None,
    title: str | None = None,
) -> Figure:
    """The reference's 2x2 MEI figure: temporal traces, spectra, spatial components and the response.

    Input: ``stimulus`` ``(C, T, H, W)``. With ``model`` and ``neuron`` the fourth panel shows that neuron's
    response to the stimulus (output frame ``j`` drawn at the stimulus frame it ends on), else it stays empty.
    ``frame_rate`` (Hz) defaults to the model's ``data_info`` rate when available; without one, axes are in frames.
    """
    tensor = torch.as_tensor(np.asarray(stimulus) if isinstance(stimulus, np.ndarray) else stimulus.detach().cpu())
    if tensor.ndim != 4:
        raise DataShapeError(
            f"plot_mei: expected one stimulus (channels, time, height, width), got {tuple(tensor.shape)}."
        )
    if frame_rate is None and model is not None:
        from openretina.errors import DataFormatError
        from openretina.insilico.tuning_analyses.model_runs import frame_rate_of

        try:
            frame_rate = frame_rate_of(model)
        except DataFormatError:  # the model does not know its rate: axes in frames
            frame_rate = None
    fig, axes = pyplot().subplots(2, 2, figsize=(14, 8))
    plot_stimulus_composition(
        tensor, axes[0, 0], axes[0, 1], axes[1, 0], highlight_x_list=highlight_x_list, frame_rate=frame_rate
    )
    response_ax = axes[1, 1]
    if model is not None and neuron is not None:
        trace = _response_trace(model, tensor.float(), neuron, data_key)
        frames = tensor.shape[1] - len(trace) + np.arange(len(trace))
        response_ax.plot(frames / frame_rate if frame_rate is not None else frames, trace, color="black")
        response_ax.set_xlim(0, tensor.shape[1] / frame_rate if frame_rate is not None else tensor.shape[1])
        response_ax.set_xlabel("Time [s]" if frame_rate is not None else "Time [frames]")
        response_ax.set_title(f"Response of neuron {neuron}")
    else:
        response_ax.axis("off")
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_mds_panels(
    stimuli: torch.Tensor | np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    frame_rate: float | None = None,
) -> Figure:
    """One row per stimulus (e.g. the MDS of several cell types): spatial components and temporal traces.

    Input: ``stimuli`` ``(K, C, T, H, W)``. Returns a ``K x 2`` figure.
    """
    batch = np.asarray(stimuli.detach().cpu() if isinstance(stimuli, torch.Tensor) else stimuli)
    if batch.ndim != 5:
        raise DataShapeError(f"plot_mds_panels: expected (stimuli, channels, time, height, width), got {batch.shape}.")
    labels = list(titles) if titles is not None else [f"Stimulus {k}" for k in range(len(batch))]
    if len(labels) != len(batch):
        raise DataShapeError(f"{len(labels)} titles for {len(batch)} stimuli; give one title per stimulus.")
    fig, axes = pyplot().subplots(len(batch), 2, figsize=(10, 3 * len(batch)), squeeze=False)
    for row, (stimulus, label) in enumerate(zip(batch, labels)):
        plot_stimulus_composition(stimulus, axes[row, 1], None, axes[row, 0], frame_rate=frame_rate)
        axes[row, 0].set_title(f"{label}: spatial")
        axes[row, 1].set_title(f"{label}: temporal")
    fig.tight_layout()
    return fig
