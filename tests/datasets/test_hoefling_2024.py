"""Höfling et al. 2024 loaders on tiny files in the published layout (full clip structure, tiny images)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.base_dataloader import MovieDataSet
from openretina.data_io.h5_handling import load_h5_into_dict
from openretina.data_io.hoefling_2024 import constants
from openretina.data_io.hoefling_2024.dataloaders import (
    MirroredFrameView,
    gen_start_indices,
    get_all_movie_combinations,
    natmov_dataloaders_v2,
    roi_coords_from_mask,
)
from openretina.data_io.hoefling_2024.responses import (
    compute_test_responses,
    filter_responses,
    make_final_responses,
    repeat_block_positions,
)
from openretina.data_io.hoefling_2024.stimuli import movies_from_pickle
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError, NonFiniteDataError

L, N_CLIPS, H, W = constants.CLIP_LENGTH, constants.NUM_CLIPS, 3, 4
T_TRAIN, T_TEST, T_RECORDED = N_CLIPS * L, 5 * L, constants.NUM_RECORDED_CLIPS * L
TRIGGER_PERIOD_S, TRACE_DT_S = 5.0, 1 / 60


# --- constants ---------------------------------------------------------------------------------------------------


def test_constants() -> None:
    assert constants.FRAME_RATE_MODEL == 30.0 and L == 150 and N_CLIPS == 108 and constants.SCENE_LENGTH == 150
    assert dict(constants.STIMULI_IDS) == {"natural": 5, "chirp": 1, "mb": 2}
    assert sorted(constants.RGC_GROUP_NAMES_DICT) == list(range(1, 47))
    assert constants.RGC_GROUP_NAMES_DICT[1] == "OFF local, OS" and constants.RGC_GROUP_NAMES_DICT[32] == "OFF suppr. 2"
    assert all(constants.RGC_GROUP_NAMES_DICT[i].endswith("AC") for i in constants.AMACRINE_TYPES)
    classes = constants.RGC_GROUP_GROUP_ID_TO_CLASS_NAME
    expected = {1: "OFF", 9: "OFF", 10: "ON-OFF", 14: "ON-OFF", 15: "Fast On", 20: "Fast On", 21: "SLOW ON"}
    expected |= {28: "SLOW ON", 29: "Uncertain RGC", 32: "Uncertain RGC", 33: "AC", 46: "AC"}
    assert {k: classes[k] for k in expected} == expected
    # Each class ends at a Baden type boundary.
    assert [b for b in range(1, 33) if classes[b] != classes.get(b + 1)] == list(constants.BADEN_TYPE_BOUNDARIES)
    assert dict(constants.STIMULUS_RANGE_CONSTRAINTS) == {
        "norm": 30.0, "x_min_green": -0.654, "x_max_green": 6.269, "x_min_uv": -0.913, "x_max_uv": 6.269
    }  # fmt: skip
    assert repeat_block_positions() == constants.TEST_CLIP_POSITIONS == (0, 59, 118)
    assert len(constants.VALIDATION_CLIP_INDICES) == constants.NUM_VAL_CLIPS


# --- movies ------------------------------------------------------------------------------------------------------


def _coded_movie(random_sequences: np.ndarray) -> dict[str, Any]:
    """Channel 0 of frame ``j`` of clip ``c`` holds ``1000 c + j``; channel 1 holds the column index (to see flips)."""
    train = np.empty((2, T_TRAIN, H, W), dtype=np.float32)
    train[0] = (1000 * (np.arange(T_TRAIN) // L) + np.arange(T_TRAIN) % L)[:, None, None]
    train[1] = np.arange(W, dtype=np.float32)
    test = np.empty((2, T_TEST, H, W), dtype=np.float32)
    test[0] = (-1 - np.arange(T_TEST))[:, None, None]
    test[1] = np.arange(W, dtype=np.float32)
    stats = {"dichromatic": {"mean": np.array(36.98), "sd": np.array(36.98)}}
    return {"train": train, "test": test, "random_sequences": random_sequences, "movie_stats": stats}


@pytest.fixture
def sequences(rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.permutation(N_CLIPS) for _ in range(3)], axis=1).astype(np.uint8)


def test_movies_from_pickle_file_and_unzipped_folder(tmp_path: Path, sequences: np.ndarray) -> None:
    folder = tmp_path / "rgc_natstim_18x16"
    folder.mkdir()
    with (folder / "movies.pkl").open("wb") as handle:
        pickle.dump(_coded_movie(sequences), handle)
    for path in (folder / "movies.pkl", folder):
        movie = movies_from_pickle(path)
        assert movie.train.shape == (2, T_TRAIN, H, W) and movie.test_movie.shape == (2, T_TEST, H, W)
        assert movie.norm_mean == pytest.approx(36.98) and movie.norm_std == pytest.approx(36.98)
        np.testing.assert_array_equal(movie.random_sequences, sequences)
    with pytest.raises(DataFileNotFoundError, match="does not exist"):
        movies_from_pickle(tmp_path / "missing.pkl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileNotFoundError, match=r"exactly one \.pkl"):
        movies_from_pickle(tmp_path / "empty")
    with (tmp_path / "no_test.pkl").open("wb") as handle:
        pickle.dump({"train": np.zeros((2, 10, H, W))}, handle)
    with pytest.raises(DataFormatError, match="lacks keys"):
        movies_from_pickle(tmp_path / "no_test.pkl")


# --- responses file ----------------------------------------------------------------------------------------------


def _field_arrays(rng: np.random.Generator, n: int, eye: str, sequence: int, times_as_t0_dt: bool) -> dict[str, Any]:
    """One recording field in the published layout; neuron ``i``'s trace is the line ``slope_i * t + 1``."""
    n_samples = int((constants.NUM_RECORDED_CLIPS * TRIGGER_PERIOD_S + 2) / TRACE_DT_S)
    times = np.arange(n_samples) * TRACE_DT_S + 0.01 * np.arange(n)[:, None]  # per-neuron scan offsets
    slopes = 1.0 + np.arange(n)
    mask = np.zeros((64, 64))
    for i in range(n):
        mask[8 * i : 8 * i + 4, 10:14] = -(i + 1)
    arrays: dict[str, Any] = {
        "group_assignment": rng.integers(1, 47, n),
        "group_confidences": rng.random((n, 46)),
        "d_qi": rng.random(n),
        "chirp_qi": rng.random(n),
        "roi_ids": np.arange(1, n + 1),
        "roi_mask": mask,
        "eye": eye,
        "scan_sequence_idx": sequence,
        "natural_inferred_spikes": slopes[:, None] * times + 1.0,
        "natural_trigger_times": (0.5 + TRIGGER_PERIOD_S * np.arange(constants.NUM_RECORDED_CLIPS))[None, :],
    }
    if times_as_t0_dt:
        arrays |= {"natural_traces_t0": times[:, 0], "natural_traces_dt": np.full(n, TRACE_DT_S)}
    else:
        arrays["natural_traces_times"] = times
    return arrays


def _write_responses_file(path: Path, fields: dict[str, dict[str, Any]]) -> Path:
    with h5py.File(path, "w") as file:
        for name, arrays in fields.items():
            group = file.create_group(name)
            for key, value in arrays.items():
                if key in ("eye", "scan_sequence_idx"):
                    group.attrs[key] = value  # scalar metadata stored as group attributes
                else:
                    group.create_dataset(key, data=value)
    return path


def _expected_frames(n: int) -> np.ndarray:
    """Independent frame-time grid: 150 frames per trigger, 1/30 s apart (149 intervals over 4.9666667 s)."""
    triggers = 0.5 + TRIGGER_PERIOD_S * np.arange(constants.NUM_RECORDED_CLIPS)
    frame_times = (triggers[:, None] + np.arange(L) * 4.9666667 / 149).reshape(-1)
    values = (1.0 + np.arange(n))[:, None] * frame_times + 1.0  # interpolating a line is exact
    return values / values.std(axis=1, keepdims=True)


def test_make_final_responses_from_native_file(tmp_path: Path, rng: np.random.Generator) -> None:
    fields = {"field_a": _field_arrays(rng, 3, "left", 2, False), "field_b": _field_arrays(rng, 2, "right", 0, True)}
    data = load_h5_into_dict(_write_responses_file(tmp_path / "responses.h5", fields), progress=False)
    final = make_final_responses(data, response_type="natural", trace_type="spikes")
    assert list(final) == ["field_a", "field_b"]
    for name, n in (("field_a", 3), ("field_b", 2)):
        split = final[name]
        expected = _expected_frames(n)
        expected_train = np.concatenate([expected[:, 5 * L : 59 * L], expected[:, 64 * L : 118 * L]], axis=1)
        assert split.train.shape == (n, T_TRAIN) and split.train.dtype == np.float32
        np.testing.assert_allclose(split.train, expected_train, rtol=1e-5)
        by_trial = split.get_test_by_trial()
        assert by_trial is not None and by_trial.shape == (3, n, T_TEST)
        for trial, start in enumerate((0, 59, 118)):
            np.testing.assert_allclose(by_trial[trial], expected[:, start * L : start * L + T_TEST], rtol=1e-5)
        np.testing.assert_allclose(split.test_response, by_trial.mean(axis=0), rtol=1e-6)
        assert split.stim_id == "natural"
    kwargs = final["field_a"].session_kwargs
    assert kwargs["eye"] == "left" and kwargs["scan_sequence_idx"] == 2
    assert set(kwargs) == {"eye", "scan_sequence_idx", "group_assignment", "roi_ids", "roi_mask"}
    scaled = make_final_responses(data, scale_traces=2.0)["field_b"]
    np.testing.assert_allclose(scaled.train, 2 * final["field_b"].train, rtol=1e-6)


def test_make_final_responses_bad_input(tmp_path: Path, rng: np.random.Generator) -> None:
    field = _field_arrays(rng, 2, "right", 0, False)
    field["natural_inferred_spikes"][1, 40] = np.nan
    with pytest.raises(NonFiniteDataError, match="'field_x', key 'natural_inferred_spikes'"):
        make_final_responses({"field_x": field})
    field = _field_arrays(rng, 2, "right", 0, False)
    del field["natural_trigger_times"]
    with pytest.raises(DataFormatError, match="'field_x': key 'natural_trigger_times' is missing"):
        make_final_responses({"field_x": field})
    field = _field_arrays(rng, 2, "right", 0, False)
    field["natural_trigger_times"] = field["natural_trigger_times"][:, :-1]
    with pytest.raises(DataShapeError, match="18300 frames, expected 18450"):
        make_final_responses({"field_x": field})
    with pytest.raises(DataFormatError, match="natural-movie"):
        make_final_responses({"field_x": field}, response_type="chirp")


def test_compute_test_responses_positions() -> None:
    responses = np.tile(np.repeat(np.arange(constants.NUM_RECORDED_CLIPS), L), (2, 1)).astype(float)
    train, test, by_trial = compute_test_responses(responses)
    clips_in_train = np.unique(train[0])
    assert clips_in_train.tolist() == [*range(5, 59), *range(64, 118)]
    np.testing.assert_array_equal(
        by_trial[:, 0, ::L], [[0, 1, 2, 3, 4], [59, 60, 61, 62, 63], [118, 119, 120, 121, 122]]
    )
    np.testing.assert_array_equal(test[0, ::L], [59, 60, 61, 62, 63])


# --- filtering ---------------------------------------------------------------------------------------------------


def _filter_field(types: list[int], d_qi: list[float], chirp_qi: list[float], confidence: list[float]) -> dict:
    n = len(types)
    return {
        "group_assignment": np.array(types),
        "d_qi": np.array(d_qi),
        "chirp_qi": np.array(chirp_qi),
        "group_confidences": np.array(confidence)[:, None] * np.array([1.0, 0.5]),
        "roi_ids": np.arange(n) + 1,
        "natural_inferred_spikes": np.arange(n)[:, None] * np.ones((n, 7)),
        "natural_trigger_times": np.arange(n + 1)[None, :],  # (1, n + 1): not per neuron
        "roi_mask": -np.ones((n, n)),  # square with side n: must not be masked
        "eye": "left",
    }


def test_filter_responses_masks_neurons_and_drops_fields() -> None:
    data = {
        # neuron:   0   1  2  3  4         0    1    2    3    4
        "a": _filter_field([1, 40, 5, 7, 2], [0.7, 0.9, 0.1, 0.1, 0.9],
                           [0.0, 0.0, 0.5, 0.1, 0.9], [0.9, 0.9, 0.9, 0.9, 0.1]),
        "b": _filter_field([40, 41], [0.9, 0.9], [0.9, 0.9], [0.9, 0.9]),  # amacrines only: dropped by cell type
    }  # fmt: skip
    kept = filter_responses(
        data, filter_cell_types=True, cell_types_list=list(range(1, 33)), chirp_qi=0.35, d_qi=0.6, qi_logic="or",
        filter_counts=False, classifier_confidence=0.25,
    )  # fmt: skip
    # RGC types: 0, 2, 3, 4; quality (d >= .6 or chirp >= .35): 0, 2, 4; confidence >= .25: 0, 2.
    assert list(kept) == ["a"]
    np.testing.assert_array_equal(kept["a"]["roi_ids"], [1, 3])
    np.testing.assert_array_equal(kept["a"]["natural_inferred_spikes"][:, 0], [0, 2])
    assert kept["a"]["group_confidences"].shape == (2, 2)
    np.testing.assert_array_equal(kept["a"]["natural_trigger_times"], data["a"]["natural_trigger_times"])
    assert kept["a"]["roi_mask"].shape == (5, 5) and kept["a"]["eye"] == "left"
    assert data["a"]["roi_ids"].shape == (5,)  # input untouched

    kept_and = filter_responses(data, chirp_qi=0.35, d_qi=0.6, qi_logic="and", filter_counts=False,
                                classifier_confidence=0)  # fmt: skip
    np.testing.assert_array_equal(kept_and["a"]["roi_ids"], [5])  # only neuron 4 passes both
    assert list(kept_and) == ["a", "b"]
    assert filter_responses(data, count_threshold=4, classifier_confidence=0, d_qi=0, chirp_qi=0).keys() == {"a"}


def test_filter_responses_bad_input() -> None:
    field = _filter_field([1, 2, 3], [0.9] * 3, [0.9] * 3, [0.9] * 3)
    field["natural_raw_traces"] = np.zeros((7, 3))  # time-major: neuron axis not first
    with pytest.raises(DataShapeError, match="'f': key 'natural_raw_traces' has shape"):
        filter_responses({"f": field}, filter_counts=False)
    field = _filter_field([1, 2, 3], [0.9] * 3, [0.9] * 3, [0.9] * 3)
    del field["d_qi"]
    with pytest.raises(DataFormatError, match="'f': key 'd_qi' is missing"):
        filter_responses({"f": field})
    with pytest.raises(DataFormatError, match="cell_types_list"):
        filter_responses({"f": field}, filter_cell_types=True)


# --- dataloaders -------------------------------------------------------------------------------------------------


def _coded_responses(sequences: np.ndarray, sequence: int, n: int, eye: str) -> ResponsesTrainTestSplit:
    """Responses whose value at each frame is the code of the movie frame shown then (clip order of ``sequence``)."""
    shown = sequences[:, sequence].astype(np.int64)
    codes = (1000 * np.repeat(shown, L) + np.tile(np.arange(L), N_CLIPS)).astype(np.float32)
    test = np.tile(-1 - np.arange(T_TEST, dtype=np.float32), (n, 1))
    return ResponsesTrainTestSplit(
        train=np.tile(codes, (n, 1)),
        test=test,
        test_by_trial=np.stack([test] * 3),
        stim_id="natural",
        session_kwargs={"eye": eye, "scan_sequence_idx": sequence, "roi_ids": np.arange(1, n + 1),
                        "roi_mask": _field_arrays(np.random.default_rng(0), n, eye, 0, False)["roi_mask"],
                        "group_assignment": np.arange(1, n + 1)},
    )  # fmt: skip


def test_natmov_dataloaders_align_orders_and_eyes(sequences: np.ndarray) -> None:
    movie_content = _coded_movie(sequences)
    movie = MoviesTrainTestSplit(train=movie_content["train"], test=movie_content["test"], random_sequences=sequences)
    responses = {
        "field_right": _coded_responses(sequences, 0, 2, "right"),
        "field_left": _coded_responses(sequences, 2, 3, "left"),
        "session_2_ventral2_20200626": _coded_responses(sequences, 1, 1, "left"),  # forced to "right"
    }
    val = list(constants.VALIDATION_CLIP_INDICES)
    loaders = natmov_dataloaders_v2(responses, movie, val, train_chunk_size=50, batch_size=8, seed=0)
    assert set(loaders) == {"train", "validation", "test"}
    for session, split in responses.items():
        flipped = split.session_kwargs["eye"] == "left" and session != "session_2_ventral2_20200626"
        columns = np.arange(W)[::-1] if flipped else np.arange(W)
        n_train = 0
        for inputs, targets in loaders["train"][session]:
            assert inputs.shape[1:] == (2, 50, H, W) and targets.shape[1:] == (50, split.n_neurons)
            np.testing.assert_array_equal(inputs[:, 0, :, 0, 0], targets[:, :, 0])  # movie frame <-> response
            np.testing.assert_array_equal(inputs[0, 1, 0, 0], columns)
            n_train += len(inputs)
        assert n_train == (T_TRAIN - len(val) * L) // 50 // 8 * 8
        batches = list(loaders["validation"][session])
        inputs = np.concatenate([b.inputs.numpy() for b in batches])
        targets = np.concatenate([b.targets.numpy() for b in batches])
        assert inputs.shape == (len(val), 2, L, H, W)
        np.testing.assert_array_equal(inputs[:, 0, :, 0, 0], targets[..., 0])
        np.testing.assert_array_equal(inputs[:, 0, 0, 0, 0] // 1000, val)  # validation clips in the given order
        (test_inputs, test_targets), = list(loaders["test"][session])  # fmt: skip
        assert test_inputs.shape == (1, 2, T_TEST, H, W)
        np.testing.assert_array_equal(test_inputs[0, 0, :, 0, 0], test_targets[0, :, 0])
        np.testing.assert_array_equal(test_inputs[0, 1, 0, 0], columns)
        dataset = loaders["test"][session].dataset
        assert isinstance(dataset, MovieDataSet) and dataset.test_responses_by_trial is not None
        assert dataset.test_responses_by_trial.shape == (3, split.n_neurons, T_TEST)
        assert dataset.roi_coords is not None and dataset.roi_coords.shape == (split.n_neurons, 2)


def test_movie_combinations_are_views_of_one_movie(sequences: np.ndarray) -> None:
    content = _coded_movie(sequences)
    combinations = get_all_movie_combinations(content["train"], content["test"], sequences, [3, 1])
    for eye in ("right", "left"):
        for view in (*combinations[eye]["train"].values(), combinations[eye]["validation"]):
            assert view.source is content["train"]  # no copy per order or eye
            assert isinstance(view, MirroredFrameView) == (eye == "left")
        assert combinations[eye]["train"][1].shape == (2, T_TRAIN - 2 * L, H, W)
    starts = gen_start_indices(sequences, [3, 1], L, 50, N_CLIPS)
    assert starts["train"][2] == list(range(0, T_TRAIN - 2 * L, 50)) and starts["validation"] == [0, L]
    assert gen_start_indices(None, [3], L, 50, N_CLIPS)["train"].keys() == {0}
    with pytest.raises(DataFormatError, match="not a permutation"):
        get_all_movie_combinations(content["train"], content["test"], np.zeros((N_CLIPS, 1)), [3])
    with pytest.raises(DataFormatError, match="distinct clip ids"):
        get_all_movie_combinations(content["train"], content["test"], sequences, [3, 3])


def test_roi_coords_from_mask() -> None:
    mask = np.zeros((64, 64))
    mask[0:2, 50:54] = -7  # mean pixel (0.5, 51.5)
    coords = roi_coords_from_mask(mask, [7])
    expected = ((np.array([0.5, 51.5]) / 25 + 2.75) / 8 - 0.5) * 2
    np.testing.assert_allclose(coords[0], expected, rtol=1e-6)
    with pytest.raises(DataFormatError, match="ROI 8 has no pixel"):
        roi_coords_from_mask(mask, [8])


def test_natmov_rejects_non_natural_responses(sequences: np.ndarray) -> None:
    content = _coded_movie(sequences)
    movie = MoviesTrainTestSplit(train=content["train"], test=content["test"], random_sequences=sequences)
    split = _coded_responses(sequences, 0, 1, "right")
    split.stim_id = "chirp"
    with pytest.raises(DataFormatError, match=r"'f'.*stim_id 'chirp'"):
        natmov_dataloaders_v2({"f": split}, movie, [0])
    split = _coded_responses(sequences, 0, 1, "middle")
    with pytest.raises(DataFormatError, match="eye must be one of"):
        natmov_dataloaders_v2({"f": split}, movie, [0])
