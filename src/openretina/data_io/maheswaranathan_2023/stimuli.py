"""Stimulus movies of the Maheswaranathan et al. 2023 dataset (one per session)."""

from __future__ import annotations

from pathlib import Path

from openretina.data_io.base import MoviesTrainTestSplit
from openretina.data_io.maheswaranathan_2023._layout import find_session_files
from openretina.data_io.maheswaranathan_2023._session_file import load_session_movies
from openretina.data_io.maheswaranathan_2023.constants import StimType


def load_all_stimuli(
    base_data_path: str | Path,
    stim_type: StimType = "naturalscene",
    normalize_stimuli: bool = True,
) -> dict[str, MoviesTrainTestSplit]:
    """Load every session's training and test movie.

    Reads ``/train/stimulus`` and ``/test/stimulus`` ``(T, 50, 50)`` of each session's ``<stim_type>.h5`` (see
    :func:`~openretina.data_io.maheswaranathan_2023._layout.find_session_files` for accepted paths).
    Output: ``{session: MoviesTrainTestSplit(train (1, T_train, 50, 50), test (1, T_test, 50, 50))}``, float32,
    ``stim_id=stim_type``; with ``normalize_stimuli`` both movies are z-scored with the training movie's mean and
    unbiased std, recorded in ``norm_mean``/``norm_std`` (normalised in place: one float32 copy per movie).
    """
    return load_session_movies(find_session_files(base_data_path, stim_type), stim_type, normalize_stimuli)
