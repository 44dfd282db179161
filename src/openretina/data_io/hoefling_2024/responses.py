"""Höfling et al. 2024 responses: quality filtering, resampling onto the 30 Hz movie frames, train/test split.

Input: ``load_h5_into_dict`` of the published responses file, i.e. ``{field: {key: value}}`` with one top-level
group per recording field (= session); per-neuron arrays have the neuron axis first (``group_assignment (N,)``,
``natural_inferred_spikes (N, T_rec)``, ...). The usual pipeline is
``make_final_responses(filter_responses(load_h5_into_dict(path)))``.

Differences from the reference (its weak points): the neuron axis is not guessed from shapes (non-neuron keys are
named, everything else must have N rows); filtering builds one mask per field instead of deep-copying the
whole dataset at every step; the per-trial test layout is the package-wide ``(R, N, T)``; test clip positions are
named constants and a recording of the wrong length raises instead of being split silently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from openretina.data_io._arrays import check_finite
from openretina.data_io.base import ResponsesTrainTestSplit, error_context
from openretina.data_io.hoefling_2024.constants import (
    CLIP_LENGTH,
    FRAMES_PER_TRIGGER,
    NUM_CLIPS,
    NUM_TEST_CLIPS,
    NUM_TEST_REPEATS,
    STIMULI_IDS,
    TRIGGER_SPAN_S,
    TRIGGER_STEP,
)
from openretina.errors import DataFormatError, DataShapeError

logger = logging.getLogger(__name__)

FieldData = dict[str, Any]
QiLogic = Literal["and", "or"]

# Keys that are not per-neuron and are never masked: the ROI image and trigger time stamps.
_NOT_PER_NEURON_SUFFIXES = ("roi_mask", "trigger_times")
# Per-field metadata copied into ResponsesTrainTestSplit.session_kwargs.
SESSION_KWARGS_KEYS: tuple[str, ...] = ("eye", "scan_sequence_idx", "group_assignment", "roi_ids", "roi_mask")


def _require(field_name: str, field: FieldData, key: str) -> Any:
    if key not in field:
        raise DataFormatError(
            f"recording field {field_name!r}: key {key!r} is missing; the field holds {sorted(field)}. Check the "
            "responses file (or the response_type / trace_type arguments)."
        )
    return field[key]


def n_neurons_of_field(field_name: str, field: FieldData) -> int:
    """Number of neurons of a field, from ``group_assignment`` (or ``roi_ids``)."""
    key = "group_assignment" if "group_assignment" in field else "roi_ids"
    return len(np.atleast_1d(_require(field_name, field, key)))


def _apply_mask_to_field(field_name: str, field: FieldData, mask: np.ndarray) -> FieldData:
    """A new field dict with every per-neuron array restricted to ``mask`` (neuron axis first); other values are
    shared, not copied. Raises if an array that should be per-neuron does not have N rows."""
    n_neurons = len(mask)
    masked: FieldData = {}
    for key, value in field.items():
        if not isinstance(value, np.ndarray) or value.ndim == 0 or key.endswith(_NOT_PER_NEURON_SUFFIXES):
            masked[key] = value
        elif value.shape[0] == n_neurons:
            masked[key] = value[mask]
        else:
            raise DataShapeError(
                f"recording field {field_name!r}: key {key!r} has shape {value.shape}, but per-neuron arrays must "
                f"have the {n_neurons} neurons on axis 0; transpose it or remove the key before filtering."
            )
    return masked


def _quality_mask(
    field_name: str, field: FieldData, d_qi: float | None, chirp_qi: float | None, qi_logic: QiLogic
) -> np.ndarray:
    """Neurons passing the response-quality thresholds (``None`` or ``0`` disables a threshold)."""
    if qi_logic not in ("and", "or"):
        raise DataFormatError(f"qi_logic must be 'and' or 'or', got {qi_logic!r}.")
    tests = [
        np.asarray(_require(field_name, field, key), dtype=np.float64) >= threshold
        for key, threshold in (("d_qi", d_qi), ("chirp_qi", chirp_qi))
        if threshold
    ]
    if not tests:
        return np.ones(n_neurons_of_field(field_name, field), dtype=bool)
    return np.logical_and.reduce(tests) if qi_logic == "and" else np.logical_or.reduce(tests)


def filter_responses(
    all_responses: dict[str, FieldData],
    filter_cell_types: bool = False,
    cell_types_list: Sequence[int] | None = None,
    chirp_qi: float = 0.35,
    d_qi: float = 0.6,
    qi_logic: QiLogic = "or",
    filter_counts: bool = True,
    count_threshold: int = 10,
    classifier_confidence: float = 0.25,
    verbose: bool = False,
) -> dict[str, FieldData]:
    """Keep the neurons (and fields) that pass the selection criteria; the input is not modified.

    Per neuron, in order: cell type in ``cell_types_list`` (if ``filter_cell_types``); ``d_qi >= d_qi`` or/and
    (``qi_logic``) ``chirp_qi >= chirp_qi``; ``max(group_confidences) >= classifier_confidence`` (if > 0). Then
    fields with no neuron left, and (if ``filter_counts``) fields with at most ``count_threshold`` neurons, are
    dropped. Every per-neuron array is masked along axis 0.
    """
    if filter_cell_types and cell_types_list is None:
        raise DataFormatError("filter_cell_types=True needs cell_types_list (e.g. list(range(1, 33)) for RGCs).")
    kept: dict[str, FieldData] = {}
    dropped_by_step = {"cell type": 0, "quality": 0, "classifier": 0}
    total_before = 0
    for field_name, field in all_responses.items():
        mask = np.ones(n_neurons_of_field(field_name, field), dtype=bool)
        total_before += mask.size
        steps: list[tuple[str, np.ndarray]] = []
        if filter_cell_types:
            types = np.asarray(_require(field_name, field, "group_assignment"))
            steps.append(("cell type", np.isin(types, np.asarray(cell_types_list))))
        steps.append(("quality", _quality_mask(field_name, field, d_qi, chirp_qi, qi_logic)))
        if classifier_confidence > 0:
            confidences = np.asarray(_require(field_name, field, "group_confidences"), dtype=np.float64)
            steps.append(("classifier", confidences.reshape(mask.size, -1).max(axis=1) >= classifier_confidence))
        for step, step_mask in steps:
            dropped_by_step[step] += int((mask & ~step_mask).sum())
            mask &= step_mask
        if mask.any() and not (filter_counts and mask.sum() <= count_threshold):
            kept[field_name] = _apply_mask_to_field(field_name, field, mask)
    total_after = sum(n_neurons_of_field(name, field) for name, field in kept.items())
    if verbose:
        for step, count in dropped_by_step.items():
            print(f"{step} filter dropped {count} neurons")
        print(f"kept {len(kept)} of {len(all_responses)} fields")
    message = f"filter_responses dropped {total_before - total_after} of {total_before} neurons"
    if verbose:
        print(message)
    else:
        logger.info(message)
    return kept


def upsample_traces(triggertimes: np.ndarray, traces: np.ndarray, tracetimes: np.ndarray, stim_id: int) -> np.ndarray:
    """Resample traces onto the 30 Hz frame grid of stimulus ``stim_id`` (see ``STIMULI_IDS``).

    Each used trigger at time ``t`` starts ``FRAMES_PER_TRIGGER[stim_id]`` frames evenly spaced from ``t`` to
    ``t + TRIGGER_SPAN_S[stim_id]``; each neuron is linearly interpolated at those frame times.
    Input: ``triggertimes (n_triggers,)``, ``traces (N, T_rec)``, ``tracetimes (N, T_rec)`` (seconds).
    Output: float64 ``(N, n_used_triggers * frames_per_trigger)``.
    """
    if stim_id not in FRAMES_PER_TRIGGER:
        raise DataFormatError(f"stim_id must be one of {sorted(FRAMES_PER_TRIGGER)} (STIMULI_IDS), got {stim_id!r}.")
    if traces.shape != tracetimes.shape or traces.ndim != 2:
        raise DataShapeError(
            f"traces {traces.shape} and tracetimes {tracetimes.shape} must be the same (neurons, time) shape."
        )
    triggers = np.asarray(triggertimes, dtype=np.float64).reshape(-1)[:: TRIGGER_STEP[stim_id]]
    offsets = np.linspace(0.0, TRIGGER_SPAN_S[stim_id], FRAMES_PER_TRIGGER[stim_id])
    frame_times = (triggers[:, None] + offsets[None, :]).reshape(-1)
    return np.stack([np.interp(frame_times, times, trace) for times, trace in zip(tracetimes, traces)])


def _traces_of_field(field_name: str, field: FieldData, response_type: str, trace_type: str) -> np.ndarray:
    if trace_type == "spikes":
        inferred = f"{response_type}_inferred_spikes"
        key = inferred if inferred in field else f"{response_type}_spikes"
        traces = np.asarray(_require(field_name, field, key), dtype=np.float64)
    elif trace_type == "detrended":
        key = f"{response_type}_raw_traces - {response_type}_smoothed_traces"
        raw = np.asarray(_require(field_name, field, f"{response_type}_raw_traces"), dtype=np.float64)
        traces = raw - np.asarray(_require(field_name, field, f"{response_type}_smoothed_traces"), dtype=np.float64)
    else:
        key = f"{response_type}_{trace_type}_traces"
        traces = np.asarray(_require(field_name, field, key), dtype=np.float64)
    check_finite(traces, f"recording field {field_name!r}, key {key!r}")
    return traces


def _trace_times_of_field(field_name: str, field: FieldData, response_type: str, shape: tuple[int, ...]) -> np.ndarray:
    key = f"{response_type}_traces_times"
    if key in field:
        times = np.asarray(field[key], dtype=np.float64)
    else:
        t0 = np.asarray(_require(field_name, field, f"{response_type}_traces_t0"), dtype=np.float64).reshape(-1, 1)
        dt = np.asarray(_require(field_name, field, f"{response_type}_traces_dt"), dtype=np.float64).reshape(-1, 1)
        times = t0 + dt * np.arange(shape[1])
    if times.shape != shape:
        raise DataShapeError(
            f"recording field {field_name!r}: trace times have shape {times.shape} but the traces have {shape}."
        )
    return times


def upsample_all_responses(
    data_dict: dict[str, FieldData],
    response_type: str = "natural",
    trace_type: str = "spikes",
    scale_traces: float = 1.0,
    norm_by_std: bool = True,
) -> dict[str, FieldData]:
    """Add ``responses_final`` (float32 ``(N, T_frames)`` at 30 Hz) to a copy of every field.

    ``trace_type``: ``"spikes"`` (``<rt>_inferred_spikes``, else ``<rt>_spikes``), ``"detrended"`` (raw minus
    smoothed traces) or any ``<type>`` of ``<rt>_<type>_traces``. With ``norm_by_std`` every neuron is divided by
    its standard deviation (not mean-centred); then everything is multiplied by ``scale_traces``.
    """
    if response_type not in STIMULI_IDS:
        raise DataFormatError(f"response_type must be one of {sorted(STIMULI_IDS)}, got {response_type!r}.")
    result: dict[str, FieldData] = {}
    for field_name, field in data_dict.items():
        traces = _traces_of_field(field_name, field, response_type, trace_type)
        times = _trace_times_of_field(field_name, field, response_type, traces.shape)
        triggers = np.asarray(_require(field_name, field, f"{response_type}_trigger_times"), dtype=np.float64)
        check_finite(triggers, f"recording field {field_name!r}, key '{response_type}_trigger_times'")
        upsampled = upsample_traces(
            triggers[0] if triggers.ndim == 2 else triggers, traces, times, STIMULI_IDS[response_type]
        )
        if norm_by_std:
            std = upsampled.std(axis=1, keepdims=True)
            flat = np.flatnonzero(std[:, 0] == 0)
            if flat.size:
                raise DataFormatError(
                    f"recording field {field_name!r}: neurons {flat.tolist()} have constant traces (std 0) and "
                    "cannot be divided by their std; filter them out or pass norm_by_std=False."
                )
            upsampled = upsampled / std
        result[field_name] = {**field, "responses_final": (upsampled * scale_traces).astype(np.float32)}
    return result


def repeat_block_positions(num_clips: int = NUM_CLIPS) -> tuple[int, ...]:
    """Clip positions where the test block starts in a natural-movie recording: before, between and after the two
    halves of the ``num_clips`` training clips (``TEST_CLIP_POSITIONS`` = (0, 59, 118) for 108 clips)."""
    if num_clips % (NUM_TEST_REPEATS - 1):
        raise DataFormatError(f"num_clips must split into {NUM_TEST_REPEATS - 1} equal halves, got {num_clips}.")
    block = NUM_TEST_CLIPS + num_clips // (NUM_TEST_REPEATS - 1)
    return tuple(block * repeat for repeat in range(NUM_TEST_REPEATS))


def compute_test_responses(
    responses: np.ndarray,
    clip_length: int = CLIP_LENGTH,
    num_clips: int = NUM_CLIPS,
    response_type: str = "natural",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a natural-movie recording ``(N, T)`` into training and test responses.

    The recording is ``num_clips + 15`` clips: the 5 test clips repeated at :func:`repeat_block_positions`, training
    clips in between. Output: ``train (N, num_clips * clip_length)`` in recorded order, ``test_avg (N, 5 *
    clip_length)`` and ``test_by_trial (3, N, 5 * clip_length)`` (trials, neurons, time).
    """
    if response_type != "natural":
        raise DataFormatError(f"only natural-movie recordings have a test split; got response_type {response_type!r}.")
    if responses.ndim != 2:
        raise DataShapeError(f"responses must be 2-D (neurons, time), got shape {responses.shape}.")
    n_frames = responses.shape[1]
    expected = (num_clips + NUM_TEST_CLIPS * NUM_TEST_REPEATS) * clip_length
    if n_frames != expected:
        raise DataShapeError(
            f"natural-movie responses have {n_frames} frames, expected {expected} ({num_clips} training clips + "
            f"{NUM_TEST_REPEATS} x {NUM_TEST_CLIPS} test clips of {clip_length} frames); check the triggers."
        )
    test_length = NUM_TEST_CLIPS * clip_length
    is_test = np.zeros(n_frames, dtype=bool)
    trials = []
    for position in repeat_block_positions(num_clips):
        start = position * clip_length
        trials.append(responses[:, start : start + test_length])
        is_test[start : start + test_length] = True
    test_by_trial = np.stack(trials)
    return responses[:, ~is_test], test_by_trial.mean(axis=0), test_by_trial


def _scalar(value: Any) -> Any:
    """A scalar stored in HDF5 as a 0-d/1-element array or bytes, as a plain Python value."""
    item = np.asarray(value).reshape(-1)[0]
    item = item.decode() if isinstance(item, bytes) else item
    return item.item() if isinstance(item, np.generic) else item


def _session_kwargs(field: FieldData) -> dict[str, Any]:
    kwargs = {key: field[key] for key in SESSION_KWARGS_KEYS if key in field}
    if "eye" in kwargs:
        kwargs["eye"] = str(_scalar(kwargs["eye"]))
    if "scan_sequence_idx" in kwargs:
        kwargs["scan_sequence_idx"] = int(_scalar(kwargs["scan_sequence_idx"]))
    return kwargs


def make_final_responses(
    data_dict: dict[str, FieldData],
    response_type: str = "natural",
    trace_type: str = "spikes",
    d_qi: float | None = None,
    chirp_qi: float | None = None,
    qi_logic: QiLogic = "or",
    scale_traces: float = 1.0,
    norm_by_std: bool = True,
) -> dict[str, ResponsesTrainTestSplit]:
    """Containers for every field: responses resampled to 30 Hz (:func:`upsample_all_responses`), optionally
    quality-filtered again (``d_qi``/``chirp_qi`` > 0), and split by :func:`compute_test_responses`.

    Output: ``{field: ResponsesTrainTestSplit(train (N, 16200), test (N, 750), test_by_trial (3, N, 750),
    stim_id=response_type, session_kwargs={eye, scan_sequence_idx, group_assignment, roi_ids, roi_mask})}``.
    Only natural movies are supported: chirp and moving-bar recordings have no test split (the reference filled it
    with NaN, which the containers reject).
    """
    if response_type != "natural":
        raise DataFormatError(
            f"make_final_responses builds train/test splits of natural-movie recordings only, got {response_type!r}; "
            "use upsample_all_responses for chirp or moving-bar responses."
        )
    upsampled = upsample_all_responses(data_dict, response_type, trace_type, scale_traces, norm_by_std)
    final: dict[str, ResponsesTrainTestSplit] = {}
    for field_name, field in upsampled.items():
        if d_qi or chirp_qi:
            field = _apply_mask_to_field(field_name, field, _quality_mask(field_name, field, d_qi, chirp_qi, qi_logic))
            if n_neurons_of_field(field_name, field) == 0:
                continue
        with error_context(f"recording field {field_name!r}"):
            train, test, test_by_trial = compute_test_responses(field["responses_final"], response_type=response_type)
            final[field_name] = ResponsesTrainTestSplit(
                train=train,
                test=test,
                test_by_trial=test_by_trial,
                stim_id=response_type,
                session_kwargs=_session_kwargs(field),
            )
    return final
