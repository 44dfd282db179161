"""Maheswaranathan et al. 2023 loaders on tiny files in the published layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.base_dataloader import MovieDataSet, NeuronDataSplit, multiple_movies_dataloaders
from openretina.data_io.maheswaranathan_2023.constants import CLIP_LENGTH, FRAME_RATE_HZ
from openretina.data_io.maheswaranathan_2023.responses import (
    NeuronDataBaccus,
    load_all_responses,
    load_test_repeats_for_session,
)
from openretina.data_io.maheswaranathan_2023.stimuli import load_all_stimuli
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError, NonFiniteDataError

T_TRAIN, T_TEST, N_REPEATS = 4 * CLIP_LENGTH, 60, 3
SESSIONS = {"15-10-07": 3, "15-11-21a": 11}  # session -> neurons; 11 cells checks numeric cell<k> ordering


def _session_arrays(rng: np.random.Generator, n_neurons: int, per_cell_repeats: bool) -> dict[str, np.ndarray]:
    arrays = {
        "train/stimulus": rng.integers(0, 255, (T_TRAIN, 50, 50)).astype(np.float64),
        "test/stimulus": rng.integers(0, 255, (T_TEST, 50, 50)).astype(np.float64),
        "time": np.arange(T_TRAIN) / FRAME_RATE_HZ,
    }
    for rate in ("firing_rate_10ms", "firing_rate_20ms"):
        repeats = rng.poisson(2.0, (N_REPEATS, n_neurons, T_TEST)).astype(np.float64)
        arrays[f"train/response/{rate}"] = rng.poisson(2.0, (n_neurons, T_TRAIN)).astype(np.float64)
        arrays[f"test/response/{rate}"] = repeats.mean(axis=0)
        if per_cell_repeats:
            if rate == "firing_rate_20ms":
                arrays.update({f"test/repeats/cell{k}": repeats[:, k] for k in range(n_neurons)})
        else:
            arrays[f"test/repeats/{rate}"] = repeats
    return arrays


@pytest.fixture
def dataset(tmp_path: Path, rng: np.random.Generator, write_h5) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """``<tmp>/neural_code_data/ganglion_cell_data/<session>/naturalscene.h5``; session 1 stores per-cell repeats."""
    root = tmp_path / "neural_code_data"
    contents = {}
    for index, (session, n_neurons) in enumerate(SESSIONS.items()):
        contents[session] = _session_arrays(rng, n_neurons, per_cell_repeats=index == 1)
        write_h5(root / "ganglion_cell_data" / session / "naturalscene.h5", contents[session])
    return root, contents


def test_stimuli_shapes_and_zscore(dataset) -> None:
    root, contents = dataset
    movies = load_all_stimuli(root, stim_type="naturalscene", normalize_stimuli=True)
    assert list(movies) == sorted(SESSIONS)
    for session, movie in movies.items():
        raw_train, raw_test = contents[session]["train/stimulus"], contents[session]["test/stimulus"]
        assert movie.train.shape == (1, T_TRAIN, 50, 50) and movie.train.dtype == np.float32
        assert movie.test_movie.shape == (1, T_TEST, 50, 50) and movie.test_movie.dtype == np.float32
        assert movie.stim_id == "naturalscene"
        assert movie.norm_mean == pytest.approx(raw_train.mean())
        assert movie.norm_std == pytest.approx(raw_train.std(ddof=1))
        np.testing.assert_allclose(movie.train[0], (raw_train - raw_train.mean()) / raw_train.std(ddof=1), atol=1e-5)
        np.testing.assert_allclose(
            movie.test_movie[0], (raw_test - raw_train.mean()) / raw_train.std(ddof=1), atol=1e-5
        )


def test_stimuli_without_normalisation_and_either_base_folder(dataset) -> None:
    root, contents = dataset
    from_root = load_all_stimuli(root, normalize_stimuli=False)
    from_sessions_folder = load_all_stimuli(root / "ganglion_cell_data", normalize_stimuli=False)
    assert list(from_root) == list(from_sessions_folder)
    movie = from_sessions_folder["15-10-07"]
    assert movie.norm_mean is None and movie.norm_std is None
    np.testing.assert_array_equal(movie.train[0], contents["15-10-07"]["train/stimulus"].astype(np.float32))


@pytest.mark.parametrize("fr_normalization", [1, 4.0])
def test_responses_normalised_with_per_trial_layout(dataset, fr_normalization: float) -> None:
    root, contents = dataset
    responses = load_all_responses(root, "firing_rate_20ms", "naturalscene", fr_normalization=fr_normalization)
    for session, n_neurons in SESSIONS.items():
        split = responses[session]
        arrays = contents[session]
        assert split.train.shape == (n_neurons, T_TRAIN) and split.train.dtype == np.float32
        assert split.test_response.shape == (n_neurons, T_TEST)
        np.testing.assert_allclose(split.train, arrays["train/response/firing_rate_20ms"] / fr_normalization)
        np.testing.assert_allclose(split.test_response, arrays["test/response/firing_rate_20ms"] / fr_normalization)
        by_trial = split.get_test_by_trial()
        assert by_trial is not None and by_trial.shape == (N_REPEATS, n_neurons, T_TEST)
        # Weak point 19: the normalisation also applies to repeats stored per response type (session 0).
        np.testing.assert_allclose(by_trial.mean(axis=0), split.test_response, rtol=1e-6)
        assert split.stim_id == "naturalscene"


def test_per_cell_repeats_are_stacked_in_numeric_order(dataset) -> None:
    root, contents = dataset
    path = root / "ganglion_cell_data" / "15-11-21a" / "naturalscene.h5"
    repeats = load_test_repeats_for_session(path, "firing_rate_20ms", fr_normalization=2)
    assert repeats is not None and repeats.shape == (N_REPEATS, 11, T_TEST)
    for k in range(11):  # cell10 must come after cell9, not after cell1
        np.testing.assert_allclose(repeats[:, k], contents["15-11-21a"][f"test/repeats/cell{k}"] / 2)


def test_repeats_absent_gives_none(tmp_path: Path, rng, write_h5) -> None:
    arrays = {k: v for k, v in _session_arrays(rng, 2, False).items() if not k.startswith("test/repeats")}
    path = write_h5(tmp_path / "s" / "naturalscene.h5", arrays)
    assert load_test_repeats_for_session(path) is None
    assert load_all_responses(tmp_path)["s"].get_test_by_trial() is None


def test_one_extra_response_bin_is_trimmed_with_warning(tmp_path: Path, rng, write_h5) -> None:
    arrays = _session_arrays(rng, 2, False)
    extra = rng.poisson(2.0, (N_REPEATS, 2, T_TEST + 1)).astype(np.float64)  # white noise: one bin longer
    arrays["test/repeats/firing_rate_20ms"] = extra
    arrays["test/response/firing_rate_20ms"] = extra.mean(axis=0)
    write_h5(tmp_path / "15-10-07" / "whitenoise.h5", arrays)
    with pytest.warns(UserWarning, match="one more than its stimulus"):
        responses = load_all_responses(tmp_path, stim_type="whitenoise")["15-10-07"]
    np.testing.assert_allclose(responses.test_response, extra.mean(axis=0)[:, :T_TEST])
    by_trial = responses.get_test_by_trial()
    assert by_trial is not None
    np.testing.assert_allclose(by_trial, extra[..., :T_TEST])
    movies = load_all_stimuli(tmp_path, stim_type="whitenoise")
    responses.check_matching_stimulus(movies["15-10-07"])


def test_seed_page_example_gives_documented_structure(dataset) -> None:
    root, _ = dataset
    movies_dictionary = load_all_stimuli(
        base_data_path=root / "ganglion_cell_data", stim_type="naturalscene", normalize_stimuli=True
    )
    responses_dictionary = load_all_responses(
        base_data_path=root / "ganglion_cell_data", response_type="firing_rate_20ms", stim_type="naturalscene"
    )
    assert set(movies_dictionary) == set(responses_dictionary) == set(SESSIONS)
    assert isinstance(movies_dictionary["15-10-07"], MoviesTrainTestSplit)
    assert isinstance(responses_dictionary["15-10-07"], ResponsesTrainTestSplit)
    dataloaders = multiple_movies_dataloaders(
        neuron_data_dictionary=responses_dictionary,
        movies_dictionary=movies_dictionary,
        train_chunk_size=50,
        batch_size=4,
        seed=42,
        clip_length=90,
        num_val_clips=1,
        allow_over_boundaries=True,
    )
    assert set(dataloaders) == {"train", "validation", "test"}
    inputs, targets = next(iter(dataloaders["train"]["15-11-21a"]))
    assert inputs.shape == (4, 1, 50, 50, 50) and targets.shape == (4, 50, 11)
    inputs, targets = next(iter(dataloaders["validation"]["15-10-07"]))
    assert inputs.shape == (1, 1, CLIP_LENGTH, 50, 50) and targets.shape == (1, CLIP_LENGTH, 3)
    inputs, targets = next(iter(dataloaders["test"]["15-10-07"]))
    assert inputs.shape == (1, 1, T_TEST, 50, 50) and targets.shape == (1, T_TEST, 3)
    test_dataset = dataloaders["test"]["15-10-07"].dataset
    assert isinstance(test_dataset, MovieDataSet)
    assert test_dataset.test_responses_by_trial is not None
    assert test_dataset.test_responses_by_trial.shape == (N_REPEATS, 3, T_TEST)


def test_neuron_data_baccus_is_a_neuron_data_split(dataset) -> None:
    root, _ = dataset
    split = NeuronDataBaccus(load_all_responses(root)["15-10-07"], [1], num_clips=4, clip_length=CLIP_LENGTH)
    assert isinstance(split, NeuronDataSplit)
    assert split.response_dict["validation"].shape == (CLIP_LENGTH, 3)


# --- bad input ---------------------------------------------------------------------------------------------------


def test_missing_folder_and_no_sessions(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match="does not exist"):
        load_all_stimuli(tmp_path / "nowhere")
    (tmp_path / "empty_session").mkdir()
    with pytest.raises(DataFileNotFoundError, match=r"naturalscene\.h5"):
        load_all_responses(tmp_path)


def test_missing_key_names_file_and_key(tmp_path: Path, rng, write_h5) -> None:
    arrays = _session_arrays(rng, 2, False)
    del arrays["train/response/firing_rate_20ms"]
    write_h5(tmp_path / "s1" / "naturalscene.h5", arrays)
    with pytest.raises(DataFormatError, match=r"s1.*naturalscene\.h5.*'train/response/firing_rate_20ms' is missing"):
        load_all_responses(tmp_path)


def test_wrong_shape_names_file_and_key(tmp_path: Path, rng, write_h5) -> None:
    arrays = _session_arrays(rng, 2, False)
    arrays["test/stimulus"] = arrays["test/stimulus"][:, :, 0]
    write_h5(tmp_path / "s1" / "naturalscene.h5", arrays)
    with pytest.raises(DataShapeError, match=r"naturalscene\.h5.*'test/stimulus' must be 3-D"):
        load_all_stimuli(tmp_path)


def test_nan_trace_names_file_and_key(tmp_path: Path, rng, write_h5) -> None:
    arrays = _session_arrays(rng, 2, False)
    arrays["train/response/firing_rate_20ms"][1, 7] = np.nan
    write_h5(tmp_path / "s1" / "naturalscene.h5", arrays)
    with pytest.raises(NonFiniteDataError, match=r"naturalscene\.h5.*'train/response/firing_rate_20ms'.*\(1, 7\)"):
        load_all_responses(tmp_path)


def test_length_mismatch_beyond_one_bin_raises(tmp_path: Path, rng, write_h5) -> None:
    arrays = _session_arrays(rng, 2, False)
    arrays["train/response/firing_rate_20ms"] = arrays["train/response/firing_rate_20ms"][:, :-2]
    write_h5(tmp_path / "s1" / "naturalscene.h5", arrays)
    with pytest.raises(DataShapeError, match=f"{T_TRAIN - 2} time bins but its stimulus has {T_TRAIN} frames"):
        load_all_responses(tmp_path)


def test_several_matching_files_in_one_session(tmp_path: Path, rng, write_h5) -> None:
    arrays = _session_arrays(rng, 2, False)
    write_h5(tmp_path / "s1" / "naturalscene.h5", arrays)
    write_h5(tmp_path / "s1" / "copy_naturalscene.h5", arrays)
    with pytest.raises(DataFormatError, match="several files"):
        load_all_stimuli(tmp_path)


def test_not_an_hdf5_file_and_bad_arguments(tmp_path: Path, rng, write_h5) -> None:
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "naturalscene.h5").write_text("not hdf5")
    with pytest.raises(DataFormatError, match="not a readable HDF5 file"):
        load_all_stimuli(tmp_path)
    with pytest.raises(DataFormatError, match="fr_normalization"):
        load_all_responses(tmp_path, fr_normalization=0)
    with pytest.raises(DataFormatError, match="response_type"):
        load_all_responses(tmp_path, response_type="firing_rate_7ms")  # type: ignore[arg-type]
    with pytest.raises(DataFormatError, match="stim_type"):
        load_all_stimuli(tmp_path, stim_type="chirp")  # type: ignore[arg-type]


def test_per_cell_repeats_with_unequal_shapes(tmp_path: Path, rng, write_h5) -> None:
    arrays = _session_arrays(rng, 2, True)
    arrays["test/repeats/cell_1"] = arrays.pop("test/repeats/cell1")[:2]  # cell_<k> accepted, but 2 repeats vs 3
    path = write_h5(tmp_path / "s1" / "naturalscene.h5", arrays)
    with h5py.File(path, "r") as file:
        assert "test/repeats/cell_1" in file
    with pytest.raises(DataShapeError, match="differ in"):
        load_test_repeats_for_session(path)
