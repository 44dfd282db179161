"""Local spike-triggered averages (LSTAs, Goldin et al. 2022): the gradient of a cell's response at each image.

For a movie that shows a grey period and then a static image, the LSTA is the gradient of the cell's summed
response over an *integration window* (output frames ``[w0, w1)``) with respect to the input, averaged over the
input frames that drive that window *and* show the image. Frames outside this set either cannot influence the
window (the model's temporal kernel is ``lag + 1`` frames long) or show grey, not the image; the reference averaged
over every input frame, grey ones included, which diluted and distorted the LSTA.

Input frame ``t`` can influence output frame ``j`` only if ``j <= t <= j + lag`` (output frame ``j`` ends on input
frame ``j + lag``), so the window ``[w0, w1)`` depends on input frames ``[w0, w1 + lag)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from openretina.errors import DataShapeError
from openretina.insilico.tuning_analyses.model_runs import call_model, frozen_eval

__all__ = ["CellIndexError", "compute_lsta_library", "driving_image_frames", "image_onset_frame"]


class CellIndexError(DataShapeError, IndexError):
    """The requested cell does not exist in the session (an ``IndexError``, as in the reference)."""


def image_onset_frame(movies: torch.Tensor | np.ndarray) -> int:
    """First frame from which every movie stays equal to its last frame (the onset of the static image).

    Input: ``(images, channels, time, height, width)``. For movies from
    :func:`~.stimuli.prepare_movies_dataset` this is ``n_empty_frames``.
    """
    tensor = torch.as_tensor(movies)
    static = (tensor == tensor[:, :, -1:]).flatten(start_dim=3).all(dim=-1).all(dim=1).all(dim=0)  # (time,)
    trailing = int(torch.cumprod(static.flip(0).to(torch.int64), dim=0).sum())
    return int(tensor.shape[2]) - trailing


def driving_image_frames(
    integration_window: tuple[int, int], time_steps: int, time_out: int, image_onset: int
) -> tuple[int, int]:
    """Input frames ``[first, stop)`` that show the image and can drive output frames ``[w0, w1)``.

    ``time_steps`` input frames give ``time_out`` output frames (lag = ``time_steps - time_out``).
    """
    w0, w1 = integration_window
    if not 0 <= w0 < w1 <= time_out:
        raise DataShapeError(
            f"integration_window {integration_window} must satisfy 0 <= w0 < w1 <= {time_out} (the model gives "
            f"{time_out} output frames for movies of {time_steps} frames); choose output frames inside that range."
        )
    lag = time_steps - time_out
    first, stop = max(image_onset, w0), min(time_steps, w1 + lag)
    if first >= stop:
        raise DataShapeError(
            f"integration_window {integration_window} depends on input frames [{w0}, {w1 + lag}), but the image "
            f"starts at frame {image_onset}: no image frame drives the window. Move the window to output frames "
            f">= {image_onset - lag}."
        )
    return first, stop


def compute_lsta_library(
    model: nn.Module,
    movies: torch.Tensor | np.ndarray,
    session_id: str | None,
    cell_id: int,
    batch_size: int = 64,
    integration_window: tuple[int, int] = (5, 15),
    device: str | torch.device | None = None,
    *,
    image_onset: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """LSTA of one cell at every movie, and the responses of all cells of the session.

    Input: ``movies`` ``(images, channels, time, height, width)`` (e.g. from
    :func:`~.stimuli.prepare_movies_dataset`), run ``batch_size`` at a time on ``device`` (default: the model's).
    ``integration_window`` counts *output* frames; with the reference movies the image appears at output frame 10.
    ``image_onset`` is the first image frame (default: detected with :func:`image_onset_frame`).

    Returns ``(lsta_library, response_library)``: ``(images, channels, height, width)``, the gradient of
    ``sum(response[w0:w1, cell_id])`` averaged over :func:`driving_image_frames`, and ``(images, time_out,
    cells)``, both float32 numpy arrays. The model is run in eval mode with frozen parameters and left as it was.
    """
    tensor = torch.as_tensor(movies, dtype=torch.float32)
    if tensor.ndim != 5 or len(tensor) == 0:
        raise DataShapeError(
            f"compute_lsta_library: expected movies (images, channels, time, height, width), got {tuple(tensor.shape)}."
        )
    if batch_size < 1:
        raise ValueError(f"compute_lsta_library: batch_size must be >= 1, got {batch_size}.")
    onset = image_onset_frame(tensor) if image_onset is None else image_onset
    if device is None:
        parameter = next(iter(model.parameters()), None)
        device = parameter.device if parameter is not None else "cpu"
    lstas, responses = [], []
    with frozen_eval(model):
        for chunk in tensor.split(batch_size):
            stimulus = chunk.to(device).requires_grad_(True)
            output = call_model(model, stimulus, session_id)  # (batch, time_out, cells)
            if not -output.shape[2] <= cell_id < output.shape[2]:
                raise CellIndexError(
                    f"compute_lsta_library: cell_id {cell_id} is out of range; session {session_id!r} has "
                    f"{output.shape[2]} cells."
                )
            first, stop = driving_image_frames(integration_window, chunk.shape[2], output.shape[1], onset)
            w0, w1 = integration_window
            (gradient,) = torch.autograd.grad(output[:, w0:w1, cell_id].sum(), stimulus)
            lstas.append(gradient[:, :, first:stop].mean(dim=2).cpu())
            responses.append(output.detach().cpu())
    return torch.cat(lstas).numpy(), torch.cat(responses).numpy()
