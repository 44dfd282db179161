"""Responses of the Sridhar et al. 2025 dataset, stored as one pickle per retina.

Pickle keys: ``train_responses`` ``(N, frames_per_trial, n_trials)``, ``test_responses`` ``(N, T_test, R)`` (or
already averaged ``(N, T_test)``), optional ``seeds`` (list) and ``trial_separation`` (seed -> trial indices).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openretina.data_io._arrays import check_finite
from openretina.data_io.base import ResponsesTrainTestSplit, error_context
from openretina.data_io.sridhar_2025.constants import SESSION_01_TEST_REPEATS
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError
from openretina.utils.file_utils import get_local_file_path


def _read_pickle(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataFileNotFoundError(f"response pickle {str(path)!r} does not exist; check base_path and files.")
    with path.open("rb") as handle:
        content = pickle.load(handle)
    if not isinstance(content, dict):
        raise DataFormatError(f"response pickle {str(path)!r} holds a {type(content).__name__}, expected a dict.")
    return content


def _array(content: dict[str, Any], path: Path, key: str, ndims: Sequence[int]) -> np.ndarray:
    if key not in content:
        raise DataFormatError(f"response pickle {str(path)!r}: key {key!r} is missing; found {sorted(content)}.")
    array = np.asarray(content[key])
    if array.ndim not in ndims:
        raise DataShapeError(
            f"response pickle {str(path)!r}: key {key!r} must have {' or '.join(map(str, ndims))} dimensions, got "
            f"shape {array.shape}."
        )
    check_finite(array, f"response pickle {str(path)!r}, key {key!r}")
    return array


def _seed_trials(content: dict[str, Any], path: Path, seed: int, n_trials: int) -> np.ndarray:
    separation = content.get("trial_separation")
    if not isinstance(separation, Mapping) or seed not in separation:
        raise DataFormatError(
            f"response pickle {str(path)!r} lists seed {seed} in 'seeds' but 'trial_separation' has no entry for it."
        )
    trials = np.asarray(separation[seed], dtype=np.int64)
    if trials.size and (trials.min() < 0 or trials.max() >= n_trials):
        raise DataFormatError(
            f"response pickle {str(path)!r}: 'trial_separation'[{seed}] holds trials {trials.tolist()} outside the "
            f"{n_trials} recorded trials."
        )
    return trials


def select_sessions(files: Mapping[str, str], sessions: Sequence[str] | None) -> dict[str, str]:
    """The entries of ``files`` for ``sessions`` (all when None); unknown sessions raise :class:`DataFormatError`."""
    if sessions is None:
        return dict(files)
    missing = [s for s in sessions if s not in files]
    if missing:
        raise DataFormatError(f"sessions {missing} have no response file; configured: {sorted(files)}.")
    return {s: files[s] for s in sessions}


def load_responses(
    base_path: str | Path,
    files: Mapping[str, str],
    stimulus_seed: int = 0,
    excluded_cells: Mapping[str, Sequence[int]] | None = None,
    cell_index: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Read each session's pickle ``base_path/files[session]``.

    Neurons: only ``cell_index`` if given, else all but ``excluded_cells[session]``. If the pickle lists ``seeds``
    and ``stimulus_seed`` is one of them, only that seed's trials (``trial_separation[seed]``) are kept, for
    training and test repeats alike; otherwise retina ``"01"`` keeps its first ``SESSION_01_TEST_REPEATS`` test
    repeats. Output per session: ``train_responses (N, frames_per_trial, n_trials)``, ``test_responses (N, T)``,
    ``test_responses_by_trial`` (``(N, T, R)`` as stored, or None), ``cell_indices`` (kept neuron indices).
    """
    root = get_local_file_path(str(base_path), what="Sridhar 2025 data")
    loaded: dict[str, dict[str, Any]] = {}
    for session, relative in files.items():
        path = root / relative
        content = _read_pickle(path)
        train = _array(content, path, "train_responses", (3,))
        test = _array(content, path, "test_responses", (2, 3))
        if test.shape[0] != train.shape[0]:
            raise DataShapeError(
                f"response pickle {str(path)!r}: 'train_responses' has {train.shape[0]} neurons but 'test_responses' "
                f"has {test.shape[0]}."
            )
        if cell_index is not None:
            if not 0 <= cell_index < train.shape[0]:
                raise DataFormatError(f"cell_index {cell_index} is out of range for {train.shape[0]} neurons ({path}).")
            kept = [cell_index]
        else:
            excluded = set((excluded_cells or {}).get(session, []))
            kept = [i for i in range(train.shape[0]) if i not in excluded]
        train, test = train[kept], test[kept]
        seeds = list(content.get("seeds", []))
        if stimulus_seed in seeds:
            trials = _seed_trials(content, path, stimulus_seed, train.shape[2])
            train = train[:, :, trials]
            test = test[:, :, trials] if test.ndim == 3 else test
        elif seeds and session == "01" and test.ndim == 3:
            test = test[:, :, :SESSION_01_TEST_REPEATS]
        loaded[session] = {
            "train_responses": train,
            "test_responses": test.mean(axis=-1) if test.ndim == 3 else test,
            "test_responses_by_trial": test if test.ndim == 3 else None,
            "cell_indices": kept,
        }
    return loaded


def response_splits_from_pickles(
    base_path: str | Path,
    files: Mapping[str, str],
    stimulus_seed: int = 0,
    excluded_cells: Mapping[str, Sequence[int]] | None = None,
    cell_index: int | None = None,
    sessions: Sequence[str] | None = None,
) -> dict[str, ResponsesTrainTestSplit]:
    """:func:`load_responses` as containers: ``train (N, n_trials * frames_per_trial)`` (whole trials back to
    back; the reference interleaved trials frame by frame), ``test (N, T)``, ``test_by_trial (R, N, T)``, float32,
    ``stim_id="sridhar_<session>"``, ``session_kwargs={stimulus_seed, frames_per_trial, num_trials,
    cell_indices}``. ``sessions`` restricts ``files`` to those sessions (the reference ignored its configured
    sessions here, so ``data_info`` listed sessions that had no dataloader)."""
    splits: dict[str, ResponsesTrainTestSplit] = {}
    chosen = select_sessions(files, sessions)
    for session, data in load_responses(base_path, chosen, stimulus_seed, excluded_cells, cell_index).items():
        train = np.asarray(data["train_responses"], dtype=np.float32)
        n_neurons, frames_per_trial, n_trials = train.shape
        by_trial = data["test_responses_by_trial"]
        with error_context(f"session {session!r}"):
            splits[session] = ResponsesTrainTestSplit(
                train=np.ascontiguousarray(train.transpose(0, 2, 1)).reshape(n_neurons, n_trials * frames_per_trial),
                test=np.asarray(data["test_responses"], dtype=np.float32),
                test_by_trial=None
                if by_trial is None
                else np.ascontiguousarray(np.asarray(by_trial, dtype=np.float32).transpose(2, 0, 1)),
                stim_id=f"sridhar_{session}",
                session_kwargs={
                    "stimulus_seed": stimulus_seed,
                    "frames_per_trial": frames_per_trial,
                    "num_trials": n_trials,
                    "cell_indices": data["cell_indices"],
                },
            )
    return splits
