"""Goldin et al. 2022 loaders on tiny files in the published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openretina.data_io.base_dataloader import multiple_movies_dataloaders
from openretina.data_io.goldin_2022.constants import CLIP_LENGTH, PRESENTATION_DURATION_S
from openretina.data_io.goldin_2022.responses import load_all_responses, load_test_repeats_for_session
from openretina.data_io.goldin_2022.stimuli import load_all_stimuli
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError, NonFiniteDataError

N_TRAIN, N_TEST, N_REPEATS, SIZE = 40, 6, 4, 108


def _session_arrays(rng: np.random.Generator, n_neurons: int, with_repeats: bool = True) -> dict[str, np.ndarray]:
    repeats = rng.poisson(1.5, (N_REPEATS, n_neurons, N_TEST)).astype(np.float64)
    arrays = {
        "train/stimulus": rng.random((N_TRAIN, SIZE, SIZE)),
        "test/stimulus": rng.random((N_TEST, SIZE, SIZE)),
        "train/response/binned": rng.poisson(1.5, (n_neurons, N_TRAIN)).astype(np.float64),
        "test/response/binned": repeats.mean(axis=0),
    }
    if with_repeats:
        arrays.update({f"test/repeats/cell{k}": repeats[:, k] for k in range(n_neurons)})
    return arrays


@pytest.fixture
def dataset(tmp_path: Path, rng: np.random.Generator, write_h5) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    contents = {
        "mouse_a": _session_arrays(rng, 12),
        "mouse_b": _session_arrays(rng, 2),
        "axolotl_c": _session_arrays(rng, 3),
    }
    for name, arrays in contents.items():
        write_h5(tmp_path / f"{name}.h5", arrays)
    (tmp_path / "mouse_notes.txt").write_text("not data")  # contains the species, but is no HDF5 file
    (tmp_path / "mouse_extra").mkdir()
    return tmp_path, contents


def test_stimuli_per_specie_and_zscore(dataset) -> None:
    root, contents = dataset
    movies = load_all_stimuli(root, specie="mouse")
    assert list(movies) == ["mouse_a", "mouse_b"]
    raw = contents["mouse_a"]["train/stimulus"]
    movie = movies["mouse_a"]
    assert movie.train.shape == (1, N_TRAIN, SIZE, SIZE) and movie.train.dtype == np.float32
    assert movie.test_movie.shape == (1, N_TEST, SIZE, SIZE)
    assert movie.norm_mean == pytest.approx(raw.mean()) and movie.norm_std == pytest.approx(raw.std(ddof=1))
    np.testing.assert_allclose(movie.train[0], (raw - raw.mean()) / raw.std(ddof=1), atol=1e-5)
    axolotl = load_all_stimuli(root, specie="axolotl", normalize_stimuli=False)
    assert list(axolotl) == ["axolotl_c"] and axolotl["axolotl_c"].norm_mean is None
    np.testing.assert_allclose(axolotl["axolotl_c"].test_movie[0], contents["axolotl_c"]["test/stimulus"], rtol=1e-6)


def test_responses_in_hz_with_per_trial_layout(dataset) -> None:
    root, contents = dataset
    responses = load_all_responses(root, specie="mouse")
    split = responses["mouse_a"]
    arrays = contents["mouse_a"]
    assert split.train.shape == (12, N_TRAIN) and split.train.dtype == np.float32
    np.testing.assert_allclose(split.train, arrays["train/response/binned"] / PRESENTATION_DURATION_S, rtol=1e-6)
    np.testing.assert_allclose(split.test_response, arrays["test/response/binned"] / 0.3, rtol=1e-6)
    by_trial = split.get_test_by_trial()
    assert by_trial is not None and by_trial.shape == (N_REPEATS, 12, N_TEST)
    for k in range(12):  # numeric cell order: cell10, cell11 after cell9
        np.testing.assert_allclose(by_trial[:, k], arrays[f"test/repeats/cell{k}"] / 0.3, rtol=1e-6)
    repeats = load_test_repeats_for_session(root / "mouse_a.h5", fr_normalization=1)
    assert repeats is not None
    np.testing.assert_allclose(repeats[:, 11], arrays["test/repeats/cell11"])


def test_generic_dataloaders_serve_single_images(dataset) -> None:
    root, _ = dataset
    loaders = multiple_movies_dataloaders(
        load_all_responses(root, specie="axolotl"),
        load_all_stimuli(root, specie="axolotl"),
        train_chunk_size=1,
        batch_size=4,
        clip_length=CLIP_LENGTH,
        num_val_clips=8,
        allow_over_boundaries=False,
    )
    inputs, targets = next(iter(loaders["train"]["axolotl_c"]))
    assert inputs.shape == (4, 1, 1, SIZE, SIZE) and targets.shape == (4, 1, 3)
    assert sum(len(batch.inputs) for batch in loaders["validation"]["axolotl_c"]) == 8
    assert sum(len(batch.inputs) for batch in loaders["test"]["axolotl_c"]) == N_TEST


def test_session_without_repeats(tmp_path: Path, rng, write_h5) -> None:
    write_h5(tmp_path / "mouse_1.hdf5", _session_arrays(rng, 2, with_repeats=False))
    assert load_all_responses(tmp_path)["mouse_1"].get_test_by_trial() is None
    assert load_test_repeats_for_session(tmp_path / "mouse_1.hdf5") is None


# --- bad input ---------------------------------------------------------------------------------------------------


def test_missing_folder_and_no_matching_file(tmp_path: Path, dataset) -> None:
    with pytest.raises(DataFileNotFoundError, match="does not exist"):
        load_all_responses(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileNotFoundError, match="'mouse' in its name"):
        load_all_stimuli(empty)


def test_stored_test_must_be_mean_of_repeats(tmp_path: Path, rng, write_h5) -> None:
    arrays = _session_arrays(rng, 3)
    arrays["test/response/binned"][2, 4] += 1.0
    write_h5(tmp_path / "mouse_1.h5", arrays)
    with pytest.raises(DataFormatError, match=r"mouse_1\.h5.*not the mean of the repeats.*\(2, 4\)"):
        load_all_responses(tmp_path)


def test_missing_key_wrong_shape_and_nan(tmp_path: Path, rng, write_h5) -> None:
    arrays = _session_arrays(rng, 3)
    del arrays["test/stimulus"]
    write_h5(tmp_path / "a" / "mouse_1.h5", arrays)
    with pytest.raises(DataFormatError, match=r"mouse_1\.h5.*'test/stimulus' is missing"):
        load_all_stimuli(tmp_path / "a")

    arrays = _session_arrays(rng, 3)
    arrays["train/response/binned"] = arrays["train/response/binned"][:, :-1]
    write_h5(tmp_path / "b" / "mouse_1.h5", arrays)
    with pytest.raises(DataShapeError, match=rf"'train/response/binned' has {N_TRAIN - 1} time bins"):
        load_all_responses(tmp_path / "b")

    arrays = _session_arrays(rng, 3)
    arrays["test/repeats/cell1"][0, 2] = np.nan
    write_h5(tmp_path / "c" / "mouse_1.h5", arrays)
    with pytest.raises(NonFiniteDataError, match=r"mouse_1\.h5.*'test/repeats/cell1'"):
        load_all_responses(tmp_path / "c")

    with pytest.raises(DataFormatError, match="specie"):
        load_all_stimuli(tmp_path / "c", specie="human")  # type: ignore[arg-type]
