"""Read retina recordings from NWB files into :class:`MoviesTrainTestSplit` / :class:`ResponsesTrainTestSplit`.

How the file maps onto the containers:

* **Stimulus**: ``ImageSeries``/``OpticalSeries`` in ``nwbfile.stimulus``, data ``(T, H, W)`` (one channel) or
  ``(T, H, W, C)``, or an external ``.npy`` movie (``external_file``, loaded memory-mapped) of the same layout.
  Frame onset times come from the series' ``timestamps`` or ``starting_time`` + ``rate``.
* **Presentations**: rows of the trials table (or of ``nwbfile.intervals[intervals]``) with ``start_time``,
  ``stop_time`` and a ``stimulus_name`` column naming a stimulus series. A row selects the frames of its series
  whose onset lies in ``[start_time, stop_time)`` (a series holding everything that was shown); if none does, the
  row is a *repeat* of the whole series, its frames shifted to start at ``start_time``. Without a table, every
  selected stimulus series is one presentation at its own times.
* **Train or test**: ``test_names`` (argument) wins; else a boolean ``is_test`` column; else stimuli presented
  more than once are test stimuli. Training presentations are concatenated in time order; each test stimulus
  gives per-trial responses ``(R, N, T)`` and their mean ``(N, T)``; its movie is taken from the first trial.
* **Responses**: ``Units`` (spike times counted in bins from each frame onset to the next; the last frame's bin
  is one frame period long), ``RoiResponseSeries`` or any ``TimeSeries`` with data ``(T, N)`` (linearly
  interpolated at the frame onsets; frames outside the recorded time range are an error, never extrapolated).

Only the frames and response samples that the presentations need are read from the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit, error_context
from openretina.data_io.nwb._pynwb import KWARG_SCRATCH_PREFIX, METADATA_SCRATCH, import_pynwb
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError

__all__ = ["load_nwb_session", "load_nwb_sessions"]

STIMULUS_COLUMN = "stimulus_name"
TEST_COLUMN = "is_test"


@dataclass(frozen=True)
class _Presentation:
    """One showing of a stimulus series: which of its frames, at which onset times (seconds)."""

    name: str
    is_test: bool
    frames: slice
    times: np.ndarray


class _Stimulus:
    """A stimulus series, its frame onset times and lazy access to its frames ``(T, H, W[, C])``."""

    def __init__(self, series: Any, nwb_path: Path) -> None:
        self.name: str = series.name
        self._where = f"NWB file {str(nwb_path)!r}, stimulus {self.name!r}"
        external = getattr(series, "external_file", None)
        if external is not None and len(external) > 0:
            self.data = self._external_movie(series, nwb_path)
        else:
            self.data = series.data
        shape = tuple(self.data.shape)
        if len(shape) not in (3, 4):
            raise DataShapeError(
                f"{self._where}: frames must be (time, height, width) or (time, height, width, channels), "
                f"got shape {shape}."
            )
        self.times = _series_times(series, shape[0], self._where)
        self.period = _frame_period(series, self.times, self._where)

    def _external_movie(self, series: Any, nwb_path: Path) -> Any:
        files = list(series.external_file)
        if len(files) != 1:
            raise DataFormatError(
                f"{self._where}: {len(files)} external files {files}; only a single external movie is supported, "
                "concatenate them into one .npy file."
            )
        path = Path(str(files[0]))
        path = path if path.is_absolute() else nwb_path.parent / path
        if not path.is_file():
            raise DataFileNotFoundError(f"{self._where}: external movie {str(path)!r} does not exist.")
        if path.suffix != ".npy":
            raise DataFormatError(
                f"{self._where}: external movie {str(path)!r} is not a .npy file; convert it with numpy "
                "(frames as (time, height, width[, channels]))."
            )
        return np.load(path, mmap_mode="r")

    def read(self, frames: slice) -> np.ndarray:
        """Frames as float32 ``(C, T, H, W)``."""
        block = np.asarray(self.data[frames], dtype=np.float32)
        if block.ndim == 3:
            block = block[..., None]
        return np.ascontiguousarray(np.moveaxis(block, -1, 0))

    def presentation(self, start: float, stop: float, is_test: bool) -> _Presentation:
        """The frames shown in ``[start, stop)``, or the whole series replayed from ``start``."""
        half = self.period / 2
        inside = np.flatnonzero((self.times >= start - half) & (self.times < stop - half))
        if inside.size:
            frames = slice(int(inside[0]), int(inside[-1]) + 1)
            return _Presentation(self.name, is_test, frames, self.times[frames])
        return _Presentation(self.name, is_test, slice(0, len(self.times)), start + self.times - self.times[0])


def _series_times(series: Any, n_samples: int, where: str) -> np.ndarray:
    """Sample times in seconds from ``timestamps`` or ``starting_time`` + ``rate``."""
    if series.timestamps is not None:
        times = np.asarray(series.timestamps[:], dtype=np.float64)
        if times.shape != (n_samples,):
            raise DataShapeError(f"{where}: {times.shape[0]} timestamps for {n_samples} samples (expected equal).")
        return times
    if series.rate is None or not series.rate > 0:
        raise DataFormatError(f"{where}: neither timestamps nor a positive rate; the sample times are unknown.")
    return float(series.starting_time or 0.0) + np.arange(n_samples) / float(series.rate)


def _frame_period(series: Any, times: np.ndarray, where: str) -> float:
    if series.rate:
        return 1.0 / float(series.rate)
    if times.size < 2:
        raise DataFormatError(f"{where}: a single timestamp and no rate; the frame duration is unknown.")
    return float(np.median(np.diff(times)))


class _ContinuousResponses:
    """A ``TimeSeries``/``RoiResponseSeries`` with data ``(T, N)``, sampled by linear interpolation."""

    def __init__(self, series: Any, where: str) -> None:
        self.where = where
        self.data = series.data
        shape = tuple(self.data.shape)
        if len(shape) not in (1, 2):
            raise DataShapeError(f"{where}: data must be (time, neurons), got shape {shape}.")
        self.n_neurons = 1 if len(shape) == 1 else shape[1]
        n_times = shape[0]
        if series.timestamps is not None and series.timestamps.shape[0] != n_times:
            hint = " It looks transposed: NWB stores time first." if len(shape) == 2 else ""
            raise DataShapeError(
                f"{where}: data has {n_times} samples along axis 0 but {series.timestamps.shape[0]} timestamps.{hint}"
            )
        self.times = _series_times(series, n_times, where)
        rois = getattr(series, "rois", None)
        # ROI ids of the segmentation table rows the series refers to (row positions are not ids).
        self.ids = (
            np.asarray(rois.table.id[:])[np.asarray(rois.data[:])] if rois is not None else np.arange(self.n_neurons)
        )

    def sample(self, times: np.ndarray) -> np.ndarray:
        """Responses at ``times``: float32 ``(N, len(times))``."""
        first, last = self.times[0], self.times[-1]
        tolerance = 1e-9 * max(1.0, abs(last))
        if times[0] < first - tolerance or times[-1] > last + tolerance:
            raise DataShapeError(
                f"{self.where}: recorded from {first:.6g} s to {last:.6g} s but the stimulus frames span "
                f"{times[0]:.6g} s to {times[-1]:.6g} s; responses must cover every frame (no extrapolation)."
            )
        low = max(int(np.searchsorted(self.times, times[0], side="right")) - 1, 0)
        high = min(int(np.searchsorted(self.times, times[-1], side="left")) + 1, len(self.times))
        window = self.times[low:high]
        values = np.asarray(self.data[low:high], dtype=np.float64).reshape(len(window), -1)
        if len(window) == 1:
            return np.repeat(values.T, len(times), axis=1).astype(np.float32)
        left = np.clip(np.searchsorted(window, times, side="right") - 1, 0, len(window) - 2)
        weight = np.clip((times - window[left]) / (window[left + 1] - window[left]), 0.0, 1.0)[:, None]
        return (values[left] * (1 - weight) + values[left + 1] * weight).T.astype(np.float32)


class _SpikeResponses:
    """A ``Units`` table; spike times are counted per frame."""

    def __init__(self, units: Any, where: str) -> None:
        self.where = where
        if "spike_times" not in units.colnames:
            raise DataFormatError(f"{where}: the Units table has no 'spike_times' column (columns {units.colnames}).")
        self.ids = np.asarray(units.id[:])
        self.n_neurons = len(self.ids)
        self.spikes = [np.sort(np.asarray(units.get_unit_spike_times(i), dtype=np.float64)) for i in range(len(units))]

    def bin(self, times: np.ndarray, period: float) -> np.ndarray:
        """Spike counts in ``[t_k, t_{k+1})`` (last bin one ``period`` long): float32 ``(N, len(times))``."""
        edges = np.append(times, times[-1] + period)
        counts = [np.diff(np.searchsorted(spikes, edges, side="left")) for spikes in self.spikes]
        return np.asarray(counts, dtype=np.float32).reshape(self.n_neurons, len(times))


def _object_path(obj: Any) -> str:
    """Path of ``obj`` inside the NWB file, e.g. ``processing/ophys/DfOverF/traces`` or ``acquisition/x``."""
    pynwb = import_pynwb()
    parts = []
    while obj.parent is not None:
        parts.append(obj.name)
        if isinstance(obj.parent, pynwb.NWBFile):
            if isinstance(obj, pynwb.base.ProcessingModule):
                parts.append("processing")
            elif obj.name in obj.parent.acquisition:
                parts.append("acquisition")
            break
        obj = obj.parent
    return "/".join(reversed(parts))


def _find_responses(nwbfile: Any, responses: str | None, where: str) -> tuple[Any, str]:
    """The responses object (``Units`` or a ``TimeSeries``) and its path in the file."""
    pynwb = import_pynwb()
    candidates = [
        obj
        for obj in nwbfile.objects.values()
        if isinstance(obj, pynwb.misc.Units) or (isinstance(obj, pynwb.TimeSeries) and obj.parent is not None)
    ]
    candidates = [obj for obj in candidates if not isinstance(obj, pynwb.image.ImageSeries)]
    if responses is not None:
        wanted = responses.strip("/")
        matches = [obj for obj in candidates if ("/" + _object_path(obj)).endswith("/" + wanted)]
        if len(matches) != 1:
            found = sorted(_object_path(obj) for obj in candidates)
            raise DataFormatError(
                f"{where}: {len(matches)} response objects match {responses!r} (expected 1); candidates: {found}. "
                "Pass a longer path, e.g. 'ophys/DfOverF/RoiResponseSeries'."
            )
        return matches[0], _object_path(matches[0])
    units = nwbfile.units
    if units is not None and len(units) > 0:
        return units, _object_path(units)
    for kind in (pynwb.ophys.RoiResponseSeries, pynwb.TimeSeries):
        found = [obj for obj in candidates if isinstance(obj, kind)]
        if len(found) == 1:
            return found[0], _object_path(found[0])
        if len(found) > 1:
            names = sorted(_object_path(obj) for obj in found)
            raise DataFormatError(f"{where}: several {kind.__name__} objects {names}; choose one with `responses=`.")
    raise DataFormatError(f"{where}: no Units, RoiResponseSeries or TimeSeries with responses found.")


def _stimulus_series(nwbfile: Any, names: Sequence[str] | None, path: Path) -> dict[str, _Stimulus]:
    pynwb = import_pynwb()
    where = f"NWB file {str(path)!r}"
    available = {name: obj for name, obj in nwbfile.stimulus.items() if isinstance(obj, pynwb.image.ImageSeries)}
    if not available:
        raise DataFormatError(
            f"{where}: no ImageSeries/OpticalSeries in nwbfile.stimulus (found {sorted(nwbfile.stimulus)}); "
            "the stimulus movie must be stored there."
        )
    chosen = list(available) if names is None else list(names)
    missing = [name for name in chosen if name not in available]
    if missing:
        raise DataFormatError(
            f"{where}: stimulus series {missing} not found; image series in nwbfile.stimulus: {sorted(available)}."
        )
    return {name: _Stimulus(available[name], path) for name in chosen}


def _presentations(
    nwbfile: Any,
    stimuli: dict[str, _Stimulus],
    *,
    explicit_selection: bool,
    test_names: Sequence[str] | None,
    intervals: str,
    where: str,
) -> list[_Presentation]:
    """All presentations of the selected stimuli in time order, each marked train or test."""
    table = nwbfile.trials if intervals == "trials" else nwbfile.intervals.get(intervals) if nwbfile.intervals else None
    if table is None:
        if intervals != "trials":
            raise DataFormatError(
                f"{where}: no intervals table {intervals!r}; found {sorted(nwbfile.intervals or {})}."
            )
        if test_names is None:
            raise DataFormatError(
                f"{where}: no trials table, so train and test cannot be told apart; pass `test_names=[...]` "
                f"(stimulus series: {sorted(stimuli)})."
            )
        shown = [_Presentation(s.name, s.name in test_names, slice(0, len(s.times)), s.times) for s in stimuli.values()]
    else:
        shown = _table_presentations(table, stimuli, explicit_selection, test_names, f"{where}, table {intervals!r}")
    shown.sort(key=lambda p: float(p.times[0]))
    if test_names is not None:
        unknown = sorted(set(test_names) - {p.name for p in shown})
        if unknown:
            raise DataFormatError(f"{where}: test_names {unknown} are never presented (shown: {sorted(stimuli)}).")
    if not any(p.is_test for p in shown) or all(p.is_test for p in shown):
        kind = "test" if not any(p.is_test for p in shown) else "training"
        raise DataFormatError(
            f"{where}: no {kind} presentations; mark test stimuli with `test_names=` or an '{TEST_COLUMN}' column."
        )
    return shown


def _table_presentations(
    table: Any,
    stimuli: dict[str, _Stimulus],
    explicit_selection: bool,
    test_names: Sequence[str] | None,
    where: str,
) -> list[_Presentation]:
    columns = set(table.colnames)
    starts = np.asarray(table["start_time"][:], dtype=np.float64)
    stops = np.asarray(table["stop_time"][:], dtype=np.float64)
    if STIMULUS_COLUMN in columns:
        names = [str(name) for name in table[STIMULUS_COLUMN][:]]
    elif len(stimuli) == 1:
        names = [next(iter(stimuli))] * len(starts)
    else:
        raise DataFormatError(
            f"{where}: no '{STIMULUS_COLUMN}' column and {len(stimuli)} stimulus series {sorted(stimuli)}; add the "
            "column or select one series with `stimulus=`."
        )
    if test_names is not None:
        flags = [name in test_names for name in names]
    elif TEST_COLUMN in columns:
        flags = [bool(flag) for flag in table[TEST_COLUMN][:]]
    else:
        counts = {name: names.count(name) for name in names}
        flags = [counts[name] > 1 for name in names]
    shown = []
    for row, (name, start, stop, is_test) in enumerate(zip(names, starts, stops, flags)):
        if name not in stimuli:
            if explicit_selection:
                continue
            raise DataFormatError(
                f"{where}: row {row} names stimulus {name!r}, which is not an image series in nwbfile.stimulus "
                f"({sorted(stimuli)}); select the series to use with `stimulus=`."
            )
        shown.append(stimuli[name].presentation(float(start), float(stop), is_test))
    return shown


def _read_stored_metadata(nwbfile: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Movie metadata and session kwargs written by :func:`..writer.write_nwb_session`, if any."""
    scratch = nwbfile.scratch or {}
    if METADATA_SCRATCH not in scratch:
        return {}, {}
    raw = scratch[METADATA_SCRATCH].data
    metadata = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    kwargs = dict(metadata.pop("session_kwargs", {}))
    for name, entry in scratch.items():
        if name.startswith(KWARG_SCRATCH_PREFIX):
            values = np.asarray(entry.data[:])
            if values.dtype.kind in "OSU":
                values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()]).reshape(
                    values.shape
                )
            kwargs[name[len(KWARG_SCRATCH_PREFIX) :]] = values
    return metadata, kwargs


def load_nwb_session(
    path: str | Path,
    *,
    stimulus: Sequence[str] | None = None,
    responses: str | None = None,
    test_names: Sequence[str] | None = None,
    intervals: str = "trials",
    frame_rate: float | None = None,
) -> tuple[MoviesTrainTestSplit, ResponsesTrainTestSplit]:
    """Read one NWB file into a movie split and a response split (see the module docstring for the mapping).

    Args:
        path: the ``.nwb`` file.
        stimulus: names of the stimulus series in ``nwbfile.stimulus`` to use (default all image series; with a
            selection, table rows naming other stimuli are skipped).
        responses: name or path (e.g. ``"ophys/DfOverF/RoiResponseSeries"``, ``"units"``) of the responses;
            default the ``Units`` table, else the only ``RoiResponseSeries``, else the only other ``TimeSeries``.
        test_names: stimuli that are test stimuli (default: the ``is_test`` column, else repeated stimuli).
        intervals: the presentation table, ``"trials"`` or a name in ``nwbfile.intervals``.
        frame_rate: stored in ``session_kwargs["frame_rate"]``; default ``1 / frame period`` of the stimulus.

    Returns:
        ``MoviesTrainTestSplit`` (float32 ``(C, T, H, W)`` movies as stored, not normalised) and
        ``ResponsesTrainTestSplit`` (``(N, T)``, per-trial ``(R, N, T)``; ``session_kwargs`` holds ``roi_ids``,
        ``frame_rate``, ``nwb_responses`` and any kwargs written by :func:`write_nwb_session`).
    """
    path = Path(path)
    where = f"NWB file {str(path)!r}"
    if not path.is_file():
        raise DataFileNotFoundError(f"{where} does not exist; check the path.")
    pynwb = import_pynwb()
    with pynwb.NWBHDF5IO(str(path), mode="r") as io:
        nwbfile = io.read()
        stimuli = _stimulus_series(nwbfile, stimulus, path)
        source, source_path = _find_responses(nwbfile, responses, where)
        reader: _SpikeResponses | _ContinuousResponses
        if isinstance(source, pynwb.misc.Units):
            reader = _SpikeResponses(source, f"{where}, responses {source_path!r}")
        else:
            reader = _ContinuousResponses(source, f"{where}, responses {source_path!r}")
        shown = _presentations(
            nwbfile,
            stimuli,
            explicit_selection=stimulus is not None,
            test_names=test_names,
            intervals=intervals,
            where=where,
        )

        def respond(presentation: _Presentation) -> np.ndarray:
            if isinstance(reader, _SpikeResponses):
                return reader.bin(presentation.times, stimuli[presentation.name].period)
            return reader.sample(presentation.times)

        train = [p for p in shown if not p.is_test]
        train_movie = np.concatenate([stimuli[p.name].read(p.frames) for p in train], axis=1)
        train_responses = np.concatenate([respond(p) for p in train], axis=1)
        test_movies: dict[str, np.ndarray] = {}
        by_trial: dict[str, np.ndarray] = {}
        for name in dict.fromkeys(p.name for p in shown if p.is_test):
            trials = [p for p in shown if p.is_test and p.name == name]
            lengths = {len(p.times) for p in trials}
            if len(lengths) != 1:
                raise DataShapeError(
                    f"{where}: test stimulus {name!r}: its {len(trials)} trials have different frame counts "
                    f"{[len(p.times) for p in trials]}; every repeat must show the same frames."
                )
            test_movies[name] = stimuli[name].read(trials[0].frames)
            by_trial[name] = np.stack([respond(p) for p in trials])
        metadata, kwargs = _read_stored_metadata(nwbfile)
        period = stimuli[train[0].name].period
    kwargs.setdefault("roi_ids", reader.ids)
    kwargs.setdefault("frame_rate", frame_rate if frame_rate is not None else 1.0 / period)
    kwargs.setdefault("nwb_responses", source_path)
    with error_context(where):
        movies = MoviesTrainTestSplit(
            train_movie,
            test_dict=test_movies,
            stim_id=metadata.get("stim_id"),
            norm_mean=metadata.get("norm_mean"),
            norm_std=metadata.get("norm_std"),
        )
        split = ResponsesTrainTestSplit(
            train_responses,
            test_dict={name: trials.mean(axis=0) for name, trials in by_trial.items()},
            test_by_trial_dict=by_trial,
            stim_id=metadata.get("stim_id"),
            session_kwargs=kwargs,
        )
    return movies, split


def load_nwb_sessions(
    paths_or_dir: str | Path | Iterable[str | Path], **kwargs: Any
) -> tuple[dict[str, MoviesTrainTestSplit], dict[str, ResponsesTrainTestSplit]]:
    """Read several NWB files (a directory's ``*.nwb`` or a list of paths) into dicts keyed by file stem.

    Keyword arguments are passed to :func:`load_nwb_session`.
    """
    if isinstance(paths_or_dir, (str, Path)):
        root = Path(paths_or_dir)
        if root.is_dir():
            paths = sorted(root.glob("*.nwb"))
            if not paths:
                raise DataFileNotFoundError(f"directory {str(root)!r} holds no .nwb files.")
        else:
            paths = [root]
    else:
        paths = [Path(p) for p in paths_or_dir]
    movies: dict[str, MoviesTrainTestSplit] = {}
    responses: dict[str, ResponsesTrainTestSplit] = {}
    for path in paths:
        if path.stem in movies:
            raise DataFormatError(f"two NWB files are named {path.stem!r}; session names must be unique.")
        movies[path.stem], responses[path.stem] = load_nwb_session(path, **kwargs)
    return movies, responses
