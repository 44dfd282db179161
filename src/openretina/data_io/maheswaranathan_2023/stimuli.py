"""Stimulus movies of the Maheswaranathan et al. 2023 dataset (one per session)."""

from __future__ import annotations

from pathlib import Path

from openretina.data_io.base import MoviesTrainTestSplit, error_context
from openretina.data_io.maheswaranathan_2023._layout import find_session_files
from openretina.data_io.maheswaranathan_2023._session_file import open_session_file, read_movie, zscore_in_place
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
    movies: dict[str, MoviesTrainTestSplit] = {}
    for session, path in find_session_files(base_data_path, stim_type).items():
        with error_context(f"session {session!r}"), open_session_file(path) as file:
            train = read_movie(file, "train/stimulus")
            test = read_movie(file, "test/stimulus")
            mean, std = zscore_in_place(train, test) if normalize_stimuli else (None, None)
            movies[session] = MoviesTrainTestSplit(
                train=train, test=test, stim_id=stim_type, norm_mean=mean, norm_std=std
            )
    return movies
