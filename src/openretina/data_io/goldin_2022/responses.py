"""Spike counts of the Goldin et al. 2022 dataset, converted to firing rates."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from openretina.data_io.base import ResponsesTrainTestSplit, error_context
from openretina.data_io.goldin_2022._layout import find_session_files
from openretina.data_io.goldin_2022.constants import PRESENTATION_DURATION_S, Specie
from openretina.data_io.maheswaranathan_2023._session_file import (
    align_to_stimulus,
    dataset_shape,
    open_session_file,
    read_array,
    read_per_cell_repeats,
)
from openretina.data_io.maheswaranathan_2023.responses import check_fr_normalization
from openretina.errors import DataFormatError

# Stored averages are float32/float64 means of integer counts: allow rounding, not different data.
_MEAN_RTOL, _MEAN_ATOL = 1e-5, 1e-6


def load_test_repeats_for_session(session_path: str | Path, fr_normalization: float = 1) -> np.ndarray | None:
    """Per-trial test responses ``/test/repeats/cell<k>`` (each ``(R, n_test_images)``) of one session file.

    Output: float32 ``(R, N, n_test_images)``, cells in numeric order of ``k`` (``cell_<k>`` also accepted),
    divided by ``fr_normalization``; None if the file stores no repeats.
    """
    norm = check_fr_normalization(fr_normalization)
    with open_session_file(Path(session_path)) as file:
        repeats = read_per_cell_repeats(file, "test/repeats")
    return None if repeats is None else repeats / np.float32(norm)


def _check_test_is_mean_of_repeats(file: h5py.File, key: str, test: np.ndarray, repeats: np.ndarray) -> None:
    mean = repeats.mean(axis=0)
    if mean.shape != test.shape:
        raise DataFormatError(
            f"session file {file.filename!r}: per-cell repeats under 'test/repeats' give (neurons, images) = "
            f"{mean.shape} but {key!r} is {test.shape}; the file's repeats and averages disagree."
        )
    if not np.allclose(mean, test, rtol=_MEAN_RTOL, atol=_MEAN_ATOL):
        worst = np.unravel_index(int(np.argmax(np.abs(mean - test))), test.shape)
        raise DataFormatError(
            f"session file {file.filename!r}: {key!r} is not the mean of the repeats in 'test/repeats' (largest "
            f"difference at (neuron, image) {tuple(int(i) for i in worst)}: stored {test[worst]}, mean of repeats "
            f"{mean[worst]}); the file looks modified or corrupted."
        )


def load_all_responses(
    base_data_path: str | Path,
    response_type: str = "binned",
    stim_type: str = "naturalscene",
    specie: Specie = "mouse",
    fr_normalization: float = PRESENTATION_DURATION_S,
) -> dict[str, ResponsesTrainTestSplit]:
    """Load every ``specie`` session's responses, one value per flashed image.

    Reads ``/train/response/<response_type>`` ``(N, n_train_images)``, ``/test/response/<response_type>``
    ``(N, n_test_images)`` and optional repeats ``/test/repeats/cell<k>``; the stored test response must equal the
    mean of the repeats (else :class:`DataFormatError`). Output: ``{session: ResponsesTrainTestSplit(train, test,
    test_by_trial (R, N, n_test_images) or None, stim_id=stim_type)}``, float32, all divided by
    ``fr_normalization`` (default 0.3 s: spike counts per flash -> Hz).
    """
    norm = np.float32(check_fr_normalization(fr_normalization))
    responses: dict[str, ResponsesTrainTestSplit] = {}
    for session, path in find_session_files(base_data_path, specie).items():
        with error_context(f"session {session!r}"):
            with open_session_file(path) as file:
                split: dict[str, np.ndarray] = {}
                for name in ("train", "test"):
                    key = f"{name}/response/{response_type}"
                    split[name] = align_to_stimulus(
                        read_array(file, key, "(neurons, images)"),
                        dataset_shape(file, f"{name}/stimulus")[0],
                        file=file,
                        key=key,
                        trim_one_extra_bin=False,
                    )
                repeats = read_per_cell_repeats(file, "test/repeats")
                if repeats is not None:
                    _check_test_is_mean_of_repeats(file, f"test/response/{response_type}", split["test"], repeats)
            responses[session] = ResponsesTrainTestSplit(
                train=split["train"] / norm,
                test=split["test"] / norm,
                test_by_trial=None if repeats is None else repeats / norm,
                stim_id=stim_type,
            )
    return responses
