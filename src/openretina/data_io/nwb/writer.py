"""Export sessions held in the standard containers to NWB files that :func:`.reader.load_nwb_session` reads back.

Layout of one file (times in seconds, frame ``k`` of a presentation shown at ``start + k / frame_rate``):

* ``nwbfile.stimulus["train"]`` and one series per test stimulus: ``ImageSeries`` with data ``(T, H, W)`` for a
  single channel or ``(T, H, W, C)`` otherwise (``OpticalSeries`` allows only 1 or 3 colours, so it is not
  used), stored once each.
* trials table: one row for the training movie, one per test repeat, with columns ``stimulus_name`` and
  ``is_test``; presentations are separated by ``gap_s`` seconds.
* ``nwbfile.acquisition["responses"]``: ``TimeSeries`` ``(T_total, N)`` with explicit timestamps at the frame
  onsets of every presentation (training responses, then each trial of each test stimulus).
* scratch: ``openretina_metadata`` (JSON: ``stim_id``, ``norm_mean``, ``norm_std``, scalar session kwargs) and one
  ``session_kwargs.<key>`` entry per array-valued session kwarg.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from openretina.data_io._arrays import ArrayLike
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.nwb._pynwb import KWARG_SCRATCH_PREFIX, METADATA_SCRATCH, import_pynwb
from openretina.errors import DataFormatError

__all__ = ["export_nwb", "write_nwb_session"]

TRAIN_NAME = "train"


def _as_numpy(array: ArrayLike) -> np.ndarray:
    if hasattr(array, "detach"):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _frames_last_channel(movie: ArrayLike) -> np.ndarray:
    """``(C, T, H, W)`` -> ``(T, H, W)`` for one channel, else ``(T, H, W, C)``."""
    frames = np.moveaxis(_as_numpy(movie), 0, -1)
    return np.ascontiguousarray(frames[..., 0] if frames.shape[-1] == 1 else frames)


def _split_kwargs(kwargs: Mapping[str, Any], session: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Session kwargs as JSON scalars and arrays; anything else is an error naming the key."""
    scalars: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in kwargs.items():
        if isinstance(value, (np.ndarray, list, tuple)) or hasattr(value, "detach"):
            array = _as_numpy(value)
            arrays[key] = array.astype(str) if array.dtype.kind in "OU" else array
        elif isinstance(value, (str, bool, int, float, np.generic)) or value is None:
            scalars[key] = value.item() if isinstance(value, np.generic) else value
        else:
            raise DataFormatError(
                f"session {session!r}: session_kwargs[{key!r}] is a {type(value).__name__}; only arrays, lists and "
                "scalars can be written to NWB. Convert it or drop it before exporting."
            )
    return scalars, arrays


def write_nwb_session(
    path: str | Path,
    movies: MoviesTrainTestSplit,
    responses: ResponsesTrainTestSplit,
    *,
    frame_rate: float,
    session: str | None = None,
    gap_s: float = 1.0,
    session_start_time: datetime | None = None,
) -> Path:
    """Write one session to ``path`` (see the module docstring for the layout) and return the path.

    Movies ``(C, T, H, W)``, responses ``(N, T)`` and per-trial test responses ``(R, N, T)``; test stimuli without
    per-trial responses are written as a single trial holding the averaged responses.
    """
    pynwb = import_pynwb()
    path = Path(path)
    session = session or path.stem
    responses.check_matching_stimulus(movies, session=session)
    if TRAIN_NAME in movies.test_dict:
        raise DataFormatError(f"session {session!r}: a test stimulus is called {TRAIN_NAME!r}; rename it.")
    if not frame_rate > 0:
        raise DataFormatError(f"session {session!r}: frame_rate must be > 0, got {frame_rate}.")
    scalars, arrays = _split_kwargs(responses.session_kwargs, session)

    nwbfile = pynwb.NWBFile(
        session_description=f"openretina export of session {session}",
        identifier=session,
        session_start_time=session_start_time or datetime(2000, 1, 1, tzinfo=timezone.utc),
    )
    nwbfile.add_trial_column(name="stimulus_name", description="name of the stimulus series in nwbfile.stimulus")
    nwbfile.add_trial_column(name="is_test", description="True for repeats of a test stimulus")

    segments: list[tuple[str, bool, np.ndarray, np.ndarray]] = [
        (TRAIN_NAME, False, _frames_last_channel(movies.train), _as_numpy(responses.train)[None])
    ]
    for name, movie in movies.test_dict.items():
        trials = responses.get_test_by_trial(name)
        trials = _as_numpy(responses.test_dict[name])[None] if trials is None else _as_numpy(trials)
        segments.append((name, True, _frames_last_channel(movie), trials))

    start = 0.0
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for name, is_test, frames, trials in segments:
        n_frames = frames.shape[0]
        nwbfile.add_stimulus(
            pynwb.image.ImageSeries(
                name=name,
                data=frames.astype(np.float32),
                unit="a.u.",
                starting_time=start,
                rate=float(frame_rate),
                description="frames (time, height, width[, channels])",
            )
        )
        for trial in trials:
            stop = start + n_frames / frame_rate
            nwbfile.add_trial(start_time=start, stop_time=stop, stimulus_name=name, is_test=is_test)
            times.append(start + np.arange(n_frames) / frame_rate)
            values.append(np.asarray(trial, dtype=np.float32).T)
            start = stop + gap_s
    nwbfile.add_acquisition(
        pynwb.TimeSeries(
            name="responses",
            data=np.concatenate(values, axis=0),
            unit="a.u.",
            timestamps=np.concatenate(times),
            description="responses (time, neurons) at the stimulus frame onsets",
        )
    )
    metadata = {
        "stim_id": movies.stim_id,
        "norm_mean": None if movies.norm_mean is None or math.isnan(movies.norm_mean) else movies.norm_mean,
        "norm_std": None if movies.norm_std is None or math.isnan(movies.norm_std) else movies.norm_std,
        "session_kwargs": scalars,
    }
    nwbfile.add_scratch(json.dumps(metadata), name=METADATA_SCRATCH, description="openretina metadata")
    for key, array in arrays.items():
        data: Any = array.tolist() if array.dtype.kind == "U" else array
        nwbfile.add_scratch(data, name=KWARG_SCRATCH_PREFIX + key, description=f"session_kwargs[{key!r}]")
    path.parent.mkdir(parents=True, exist_ok=True)
    with pynwb.NWBHDF5IO(str(path), mode="w") as io:
        io.write(nwbfile)
    return path


def export_nwb(
    movies: Mapping[str, MoviesTrainTestSplit] | MoviesTrainTestSplit,
    responses: Mapping[str, ResponsesTrainTestSplit],
    directory: str | Path,
    *,
    frame_rate: float,
    gap_s: float = 1.0,
) -> dict[str, Path]:
    """Write every session to ``directory/<session>.nwb``; ``movies`` is per session or one shared split.

    Returns ``{session: path}``. Read the files back with :func:`.reader.load_nwb_sessions`.
    """
    directory = Path(directory)
    paths = {}
    for session, split in responses.items():
        if isinstance(movies, MoviesTrainTestSplit):
            session_movies = movies
        elif session in movies:
            session_movies = movies[session]
        else:
            raise DataFormatError(f"session {session!r} has responses but no movies (movies: {sorted(movies)}).")
        paths[session] = write_nwb_session(
            directory / f"{session}.nwb", session_movies, split, frame_rate=frame_rate, session=session, gap_s=gap_s
        )
    return paths
