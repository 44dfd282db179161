"""Spike counts of the Karamanlis et al. 2024 dataset, one bin per stimulus frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openretina.data_io.base import ResponsesTrainTestSplit, error_context
from openretina.data_io.karamanlis_2024._sessions import check_stim_type, session_file, session_folders
from openretina.data_io.karamanlis_2024.constants import Specie, StimType
from openretina.data_io.maheswaranathan_2023._session_file import open_session_file, read_array
from openretina.data_io.maheswaranathan_2023.responses import check_fr_normalization


def load_responses_for_session(
    session_path: str | Path, stim_type: StimType = "fixationmovie", fr_normalization: float = 1.0
) -> ResponsesTrainTestSplit | None:
    """Responses of one session folder, or None (with a warning) if it has no ``…<stim_type>_data.mat``.

    Reads ``runningbin`` ``(blocks, T_block, N)`` -> train ``(N, blocks * T_block)`` (blocks back to back) and
    ``frozenbin`` ``(R, T_frozen, N)`` -> per-trial test ``(R, N, T_frozen)`` and its mean ``(N, T_frozen)``,
    float32, divided by ``fr_normalization``.
    """
    check_stim_type(stim_type)
    norm = np.float32(check_fr_normalization(fr_normalization))
    path = session_file(Path(session_path), f"{stim_type}_data.mat")
    if path is None:
        return None
    with open_session_file(path) as file:
        running = read_array(file, "runningbin", "(blocks, time, neurons)")
        frozen = read_array(file, "frozenbin", "(repeats, time, neurons)")
    train = running.reshape(-1, running.shape[2]).T / norm
    by_trial = np.ascontiguousarray(frozen.transpose(0, 2, 1)) / norm
    return ResponsesTrainTestSplit(
        train=np.ascontiguousarray(train), test=by_trial.mean(axis=0), test_by_trial=by_trial, stim_id=stim_type
    )


def load_all_responses(
    base_data_path: str | Path,
    stim_type: StimType = "fixationmovie",
    specie: Specie = "mouse",
    fr_normalization: float = 1.0,
) -> dict[str, ResponsesTrainTestSplit]:
    """Responses of every ``specie`` session (see :func:`load_responses_for_session`); sessions without the
    stimulus file are skipped with a warning. Keys match :func:`..stimuli.load_all_stimuli`."""
    responses: dict[str, ResponsesTrainTestSplit] = {}
    for session, folder in session_folders(base_data_path, specie).items():
        with error_context(f"session {session!r}"):
            loaded = load_responses_for_session(folder, stim_type, fr_normalization)
        if loaded is not None:
            responses[session] = loaded
    return responses
