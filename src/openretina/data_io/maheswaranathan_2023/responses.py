"""Ganglion-cell responses of the Maheswaranathan et al. 2023 dataset.

Differences from the reference (its weak points): ``fr_normalization`` divides train, test *and* per-trial
responses whichever way the repeats are stored; responses one bin longer than their stimulus (white noise) are
trimmed with a warning instead of left misaligned; a session with several matching files raises.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from openretina.data_io.base import ResponsesTrainTestSplit, error_context
from openretina.data_io.base_dataloader import NeuronDataSplit
from openretina.data_io.maheswaranathan_2023._layout import find_session_files
from openretina.data_io.maheswaranathan_2023._session_file import (
    align_to_stimulus,
    dataset_shape,
    open_session_file,
    read_array,
    read_per_cell_repeats,
)
from openretina.data_io.maheswaranathan_2023.constants import RESPONSE_TYPES, ResponseType, StimType
from openretina.errors import DataFormatError


def check_fr_normalization(fr_normalization: float) -> float:
    """Return ``fr_normalization`` as a float, raising if it is not a positive finite number."""
    value = float(fr_normalization)
    if not (math.isfinite(value) and value > 0):
        raise DataFormatError(f"fr_normalization must be a positive finite number, got {fr_normalization!r}.")
    return value


def _check_response_type(response_type: str) -> None:
    if response_type not in RESPONSE_TYPES:
        raise DataFormatError(f"response_type must be one of {RESPONSE_TYPES}, got {response_type!r}.")


def load_test_repeats_for_session(
    session_path: str | Path,
    response_type: ResponseType = "firing_rate_20ms",
    fr_normalization: float = 1,
) -> np.ndarray | None:
    """Per-trial test responses of one session file, float32 ``(R, N, T_test)`` divided by ``fr_normalization``.

    Files store them either as one array ``/test/repeats/<response_type>`` ``(R, N, T)`` or as one array per cell
    ``/test/repeats/cell<k>`` ``(R, T)`` (stacked in numeric order of ``k``). Returns None if the file has neither.
    """
    _check_response_type(response_type)
    norm = check_fr_normalization(fr_normalization)
    with open_session_file(Path(session_path)) as file:
        key = f"test/repeats/{response_type}"
        repeats = read_array(file, key, "(repeats, neurons, time)") if key in file else None
        if repeats is None:
            repeats = read_per_cell_repeats(file, "test/repeats")
    return None if repeats is None else repeats / np.float32(norm)


def load_all_responses(
    base_data_path: str | Path,
    response_type: ResponseType = "firing_rate_20ms",
    stim_type: StimType = "naturalscene",
    fr_normalization: float = 1,
) -> dict[str, ResponsesTrainTestSplit]:
    """Load every session's firing rates, aligned with the movies of :func:`..stimuli.load_all_stimuli`.

    Output: ``{session: ResponsesTrainTestSplit(train (N, T_train), test (N, T_test), test_by_trial (R, N, T_test)
    or None, stim_id=stim_type)}``, float32, all divided by ``fr_normalization``. Responses exactly one bin longer
    than their stimulus are trimmed to it (with a warning); other length mismatches raise.
    """
    _check_response_type(response_type)
    norm = np.float32(check_fr_normalization(fr_normalization))
    responses: dict[str, ResponsesTrainTestSplit] = {}
    for session, path in find_session_files(base_data_path, stim_type).items():
        with error_context(f"session {session!r}"):
            with open_session_file(path) as file:
                split: dict[str, np.ndarray] = {}
                for name in ("train", "test"):
                    key = f"{name}/response/{response_type}"
                    frames = dataset_shape(file, f"{name}/stimulus")[0]
                    split[name] = align_to_stimulus(
                        read_array(file, key, "(neurons, time)"), frames, file=file, key=key
                    )
                by_trial = load_test_repeats_for_session(path, response_type, fr_normalization)
                if by_trial is not None:
                    by_trial = align_to_stimulus(by_trial, split["test"].shape[1], file=file, key="test/repeats")
            responses[session] = ResponsesTrainTestSplit(
                train=split["train"] / norm,
                test=split["test"] / norm,
                test_by_trial=by_trial,
                stim_id=stim_type,
            )
    return responses


class NeuronDataBaccus(NeuronDataSplit):
    """:class:`~openretina.data_io.base_dataloader.NeuronDataSplit` under the name the reference configs use for
    this dataset; behaviour is identical."""
