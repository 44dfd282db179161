"""Read a dataset stored in the native HDF5 layout into the data containers.

Layout (details and extensions in ``docs/hdf5_format.md``)::

    <base_data_path>/
        stimuli/<name>.npy            (C, T, H, W) movie shared by all sessions
        <session>.h5 | <session>.hdf5
            responses_<name>          (N, T) responses to stimulus <name>
            responses_by_trial_<name> optional (R, N, T) single-trial responses (test stimuli)
            stimulus_<name>           optional (C, T, H, W) movie overriding stimuli/<name>.npy
            session_info/             optional group: datasets and attributes -> session_kwargs
            attrs: sampling_rate_hz, stim_id (optional)

Stimuli named in ``test_names`` become test stimuli; all others are joined along time, in sorted name
order, into the training movie (responses are joined in the same order, so both stay aligned).

Improvements over the reference reader: a stimulus stored only inside a session file works; sessions are
read in sorted order; a session without training stimuli, a missing test stimulus or NaN responses give a
clear error; attributes are read; shared stimuli are memory-mapped and never copied per session.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from openretina.data_io._arrays import check_finite, error_context
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.h5_layout import (
    RESPONSES_BY_TRIAL_PREFIX,
    RESPONSES_PREFIX,
    SESSION_INFO_GROUP,
    STIM_ID_ATTR,
    STIMULUS_PREFIX,
    SessionLayout,
    check_base_dir,
    check_stimulus_shape,
    decode_attribute,
    find_session_files,
    find_shared_stimuli,
    open_shared_stimulus,
    scan_session,
)
from openretina.errors import DataFormatError, DataShapeError


def load_stimuli(
    base_data_path: str | Path,
    test_names: Sequence[str],
    stimulus_size: Sequence[int],
    norm_mean: float | None = None,
    norm_std: float | None = None,
) -> dict[str, MoviesTrainTestSplit]:
    """Load the stimuli of every session in ``base_data_path``.

    Args:
        base_data_path: directory in the HDF5 layout.
        test_names: stimulus names used as test stimuli (every session must contain each of them).
        stimulus_size: expected ``(C, H, W)`` of every stimulus.
        norm_mean, norm_std: movies are returned as ``(x - norm_mean) / norm_std`` in float32 (defaults 0 and 1).

    Returns:
        ``{session: MoviesTrainTestSplit}`` in sorted session order; arrays are ``(C, T, H, W)``.

    Memory: a shared float32 stimulus that needs no normalisation is passed on as the read-only memory map
    itself; otherwise it is normalised once and the same array is shared by all sessions. The training movie
    of sessions that saw the same training stimuli is one shared array as well. All returned stimulus arrays
    are therefore read-only; copy one before editing it in place.
    """
    base = check_base_dir(base_data_path)
    size = _check_stimulus_size(stimulus_size)
    tests = _check_test_names(test_names)
    mean, std = _check_normalisation(norm_mean, norm_std)
    shared_paths = find_shared_stimuli(base)
    shared_arrays = {name: open_shared_stimulus(path) for name, path in shared_paths.items()}
    shared_shapes = {name: (tuple(array.shape), str(shared_paths[name])) for name, array in shared_arrays.items()}
    prepared_shared: dict[str, np.ndarray] = {}
    train_cache: dict[tuple[str, ...], np.ndarray] = {}

    movies: dict[str, MoviesTrainTestSplit] = {}
    for layout in _scan_sessions(base, shared_shapes, tests, size):
        prepared: dict[str, np.ndarray] = {}
        for name in layout.stimulus_names:
            source = layout.stimuli[name]
            if source.session_specific:
                with h5py.File(layout.path, "r") as file:
                    raw = np.asarray(file[STIMULUS_PREFIX + name][...])
                check_finite(raw, f"stimulus {name!r} ({source.description})")
                prepared[name] = _normalise(raw, mean, std)
            else:
                if name not in prepared_shared:
                    check_finite(shared_arrays[name], f"stimulus {name!r} ({source.description})")
                    prepared_shared[name] = _normalise(shared_arrays[name], mean, std)
                prepared[name] = prepared_shared[name]
        train_names = [name for name in layout.stimulus_names if name not in tests]
        # Sessions sharing their training stimuli share one training movie (session-specific ones never do).
        cache_key = tuple(
            f"{layout.name}/{name}" if layout.stimuli[name].session_specific else name for name in train_names
        )
        if cache_key not in train_cache:
            train_cache[cache_key] = _join_along_time([prepared[name] for name in train_names])
            train_cache[cache_key].flags.writeable = False
        with error_context(layout.where()):
            movies[layout.name] = MoviesTrainTestSplit(
                train_cache[cache_key],
                test_dict={name: prepared[name] for name in tests},
                stim_id=layout.stim_id,
                norm_mean=norm_mean,
                norm_std=norm_std,
            )
    return movies


def load_responses(base_data_path: str | Path, test_names: Sequence[str]) -> dict[str, ResponsesTrainTestSplit]:
    """Load the responses of every session in ``base_data_path``.

    Returns ``{session: ResponsesTrainTestSplit}`` in sorted session order with ``train`` ``(N, T_train)``
    (non-test responses joined along time in sorted stimulus order), ``test_dict`` ``{name: (N, T)}``,
    ``test_by_trial_dict`` ``{name: (R, N, T)}`` from ``responses_by_trial_<name>``, ``stim_id`` from the root
    attribute and ``session_kwargs`` from the ``session_info`` group (datasets and attributes) plus the other
    root attributes (e.g. ``sampling_rate_hz``). Arrays keep the dtype stored in the file.
    """
    base = check_base_dir(base_data_path)
    tests = _check_test_names(test_names)
    shared_shapes = {
        name: (tuple(open_shared_stimulus(path).shape), str(path)) for name, path in find_shared_stimuli(base).items()
    }
    responses: dict[str, ResponsesTrainTestSplit] = {}
    for layout in _scan_sessions(base, shared_shapes, tests, None):
        with h5py.File(layout.path, "r") as file:
            arrays = {name: np.asarray(file[RESPONSES_PREFIX + name][...]) for name in layout.stimulus_names}
            by_trial = {
                name: np.asarray(file[RESPONSES_BY_TRIAL_PREFIX + name][...])
                for name in sorted(layout.by_trial_shapes)
                if name in tests
            }
            session_kwargs = _read_session_kwargs(file, layout)
        for prefix, group in ((RESPONSES_PREFIX, arrays), (RESPONSES_BY_TRIAL_PREFIX, by_trial)):
            for name, array in group.items():
                check_finite(array, f"{layout.where()}: dataset '{prefix}{name}'")
        train_names = [name for name in layout.stimulus_names if name not in tests]
        with error_context(layout.where()):
            responses[layout.name] = ResponsesTrainTestSplit(
                _join_along_time([arrays[name] for name in train_names]),
                test_dict={name: arrays[name] for name in tests},
                test_by_trial_dict=by_trial,
                stim_id=layout.stim_id,
                session_kwargs=session_kwargs,
            )
    return responses


def _scan_sessions(
    base: Path,
    shared_shapes: dict[str, tuple[tuple[int, ...], str]],
    tests: list[str],
    stimulus_size: tuple[int, int, int] | None,
) -> list[SessionLayout]:
    """Scan and check every session's metadata (and stimulus shapes) before any array is loaded."""
    layouts = [scan_session(name, path, shared_shapes) for name, path in find_session_files(base).items()]
    for layout in layouts:
        where = layout.where()
        for name in layout.stimulus_names:
            check_stimulus_shape(layout.stimuli[name], stimulus_size)
        if not layout.response_shapes:
            raise DataFormatError(
                f"{where}: no '{RESPONSES_PREFIX}<stimulus>' datasets found. Store the responses to each stimulus "
                f"as '{RESPONSES_PREFIX}<stimulus>' (neurons, time), or move unrelated HDF5 files out of {base}."
            )
        missing = [name for name in tests if name not in layout.response_shapes]
        if missing:
            raise DataFormatError(
                f"{where}: test stimuli {missing} not found; it has responses to {layout.stimulus_names}. "
                "Fix test_names or add the missing 'responses_<name>' datasets."
            )
        if all(name in tests for name in layout.stimulus_names):
            raise DataFormatError(
                f"{where}: all its stimuli {layout.stimulus_names} are test stimuli, so there is no training "
                "data. Record at least one training stimulus or remove a name from test_names."
            )
        for name in sorted(set(layout.by_trial_shapes) - set(tests)):
            # Not an error: the same file may be read with another choice of test stimuli.
            warnings.warn(
                f"{where}: '{RESPONSES_BY_TRIAL_PREFIX}{name}' is ignored because {name!r} is not a test stimulus "
                f"(test_names={tests}); training uses the trial average '{RESPONSES_PREFIX}{name}'.",
                stacklevel=3,
            )
    return layouts


def _check_stimulus_size(stimulus_size: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(int(v) for v in stimulus_size)
    if len(values) != 3:
        raise DataShapeError(
            f"stimulus_size must have 3 entries (channels, height, width), got {list(stimulus_size)} "
            f"({len(values)} entries). Time is not part of it."
        )
    return values[0], values[1], values[2]


def _check_test_names(test_names: Sequence[str]) -> list[str]:
    names = [test_names] if isinstance(test_names, str) else [str(name) for name in test_names]
    if not names:
        raise DataFormatError(
            "test_names is empty: at least one stimulus must be held out as test stimulus (the containers need a "
            "non-empty test_dict). Pass e.g. test_names=['<stimulus name>']."
        )
    return names


def _check_normalisation(norm_mean: float | None, norm_std: float | None) -> tuple[float, float]:
    mean = 0.0 if norm_mean is None else float(norm_mean)
    std = 1.0 if norm_std is None else float(norm_std)
    if not np.isfinite(mean) or not np.isfinite(std) or std <= 0:
        raise DataFormatError(
            f"Stimulus normalisation needs a finite norm_mean and a positive finite norm_std, got "
            f"norm_mean={norm_mean}, norm_std={norm_std}."
        )
    return mean, std


def _normalise(array: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Return ``(array - mean) / std`` as read-only float32, passing float32 input through when nothing changes.

    Read-only because one array is shared by all sessions that show the stimulus.
    """
    if mean == 0.0 and std == 1.0 and array.dtype == np.float32:
        result = array
    else:
        result = np.array(array, dtype=np.float32)
        result -= np.float32(mean)
        result /= np.float32(std)
    result.flags.writeable = False
    return result


def _join_along_time(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate along time, axis 1 of both movies ``(C, T, H, W)`` and responses ``(N, T)``.

    A single part is passed through uncopied (it may be a memory map); several parts make one in-RAM array.
    """
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _read_session_kwargs(file: h5py.File, layout: SessionLayout) -> dict[str, Any]:
    """``session_info`` datasets (nested groups become dicts) and attributes, plus root attributes but stim_id."""
    kwargs: dict[str, Any] = {k: v for k, v in layout.root_attributes.items() if k != STIM_ID_ATTR}
    info = file.get(SESSION_INFO_GROUP)
    if info is None:
        return kwargs
    if not isinstance(info, h5py.Group):
        raise DataFormatError(
            f"{layout.where()}: '{SESSION_INFO_GROUP}' is a dataset, expected a group of per-session metadata."
        )
    for key, value in [*_read_group(info).items(), *((k, decode_attribute(v)) for k, v in info.attrs.items())]:
        if key in kwargs:
            raise DataFormatError(
                f"{layout.where()}: metadata {key!r} is defined twice (as a root attribute and in "
                f"'{SESSION_INFO_GROUP}', or as both a dataset and an attribute there). Keep one."
            )
        kwargs[key] = value
    return kwargs


def _read_group(group: h5py.Group) -> dict[str, Any]:
    """Datasets as numpy arrays (text as ``str``), subgroups as nested dicts."""
    content: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            content[key] = _read_group(item)
        elif h5py.check_string_dtype(item.dtype) is not None:
            content[key] = np.array(item.asstr()[()])
        else:
            content[key] = np.array(item[()])
    return content
