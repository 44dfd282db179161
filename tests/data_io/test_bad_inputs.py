"""Malformed datasets and containers: each must raise a specific openretina error with an actionable message,
and no failing call may modify a file on disk."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from openretina.cli.create_data import main as create_data_main
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.h5_dataset_reader import load_responses, load_stimuli
from openretina.data_io.h5_handling import load_dataset_from_h5
from openretina.errors import (
    DataFileNotFoundError,
    DataFormatError,
    DataShapeError,
    NonFiniteDataError,
    OpenRetinaError,
)

C, H, W = 2, 16, 8  # create-data writes 16 x 8 pixel stimuli
TEST = "random_noise_0"
TRAIN = "random_noise_1"
SESSION = "session_0.hdf5"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid dataset from `openretina create-data`: 2 sessions, stimuli random_noise_{0,1,2} of 70-72 frames."""
    directory = tmp_path_factory.mktemp("pristine")
    args = [str(directory), "--num-colors", str(C), "--num-stimuli", "3", "--clip-length", "1", "--responses", "box"]
    assert create_data_main(args) == 0
    return directory


@pytest.fixture
def dataset(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(pristine, copy)
    return copy


def _fingerprint(directory: Path) -> dict[str, str]:
    """sha256 of every file below ``directory`` (also reveals added or removed files)."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _edit(directory: Path, session: str = SESSION) -> h5py.File:
    return h5py.File(directory / session, "a")


def _replace(directory: Path, key: str, value: np.ndarray, session: str = SESSION) -> None:
    with _edit(directory, session) as file:
        del file[key]
        file[key] = value


def _n_neurons(directory: Path) -> int:
    with h5py.File(directory / SESSION, "r") as file:
        return int(file[f"responses_{TEST}"].shape[0])


def _nan_responses(d: Path) -> None:
    with _edit(d) as file:
        values = file[f"responses_{TRAIN}"][...]
        values[1, 5] = values[2, 9] = values[3, 0] = np.nan
        file[f"responses_{TRAIN}"][...] = values


def _wrong_trials(d: Path) -> None:
    with _edit(d) as file:
        file[f"responses_by_trial_{TEST}"] = np.ones((3, _n_neurons(d) + 1, 70))


def _trials_without_average(d: Path) -> None:
    with _edit(d) as file:
        file["responses_by_trial_extra"] = np.ones((3, 2, 70))


def _fewer_neurons(d: Path) -> None:
    with _edit(d) as file:
        values = file[f"responses_{TRAIN}"][...]
    _replace(d, f"responses_{TRAIN}", values[:-1])


def _group_instead_of_dataset(d: Path) -> None:
    with _edit(d) as file:
        file.create_group("responses_folder")


def _session_info_dataset(d: Path) -> None:
    with _edit(d) as file:
        del file["session_info"]
        file["session_info"] = np.arange(3)


def _unknown_response(d: Path) -> None:
    with _edit(d) as file:
        file["responses_unseen_movie"] = np.ones((_n_neurons(d), 70))


def _file_without_responses(d: Path) -> None:
    with h5py.File(d / "notes.h5", "w") as file:
        file["comment"] = np.array([1])


Mutation = Callable[[Path], None]
ReaderCall = Callable[[Path], Any]


def _stimuli(test_names: list[str] | None = None, size: list[int] | None = None, **kwargs: Any) -> ReaderCall:
    return lambda d: load_stimuli(d, test_names or [TEST], size or [C, H, W], **kwargs)


def _responses(test_names: list[str] | None = None) -> ReaderCall:
    return lambda d: load_responses(d, [TEST] if test_names is None else test_names)


# (id, mutation of a valid dataset, failing call, exception class, words the message must contain)
READER_CASES: list[tuple[str, Mutation | None, ReaderCall, type[Exception], list[str]]] = [
    ("missing_dir", None, lambda d: load_stimuli(d / "nope", [TEST], [C, H, W]), DataFileNotFoundError,
     ["does not exist", "nope"]),
    ("file_not_dir", None, lambda d: load_responses(d / SESSION, [TEST]), DataFormatError,
     ["is a file", "expected a directory"]),
    ("no_session_files", lambda d: [p.unlink() for p in d.glob("*.hdf5")], _responses(), DataFileNotFoundError,
     ["No session files", "*.h5"]),
    ("stimulus_size_len", None, _stimuli(size=[C, H]), DataShapeError, ["3 entries", "[2, 16]"]),
    ("stimulus_3d", lambda d: np.save(d / "stimuli" / f"{TRAIN}.npy", np.zeros((C, 71, H), np.float32)),
     _stimuli(), DataShapeError, [f"{TRAIN}.npy", "(2, 71, 16)", "4-D"]),
    ("channel_mismatch", None, _stimuli(size=[3, H, W]), DataShapeError, ["(2, 16, 8)", "[3, 16, 8]"]),
    ("spatial_mismatch", None, _stimuli(size=[C, 18, 16]), DataShapeError, ["(2, 16, 8)", "[2, 18, 16]"]),
    ("time_mismatch", lambda d: _replace(d, f"responses_{TRAIN}", np.ones((_n_neurons(d), 70))), _responses(),
     DataShapeError, [SESSION, f"responses_{TRAIN}", "70 time bins", "71 frames"]),
    ("neuron_mismatch", _fewer_neurons, _stimuli(), DataShapeError, ["number of neurons", f"responses_{TRAIN}"]),
    ("test_name_absent", None, _responses(["natural_movie"]), DataFormatError,
     ["'session_0'", "natural_movie", "not found", TRAIN]),
    ("empty_test_names", None, _responses([]), DataFormatError, ["test_names is empty"]),
    ("all_stimuli_test", None, _responses([TEST, TRAIN, "random_noise_2"]), DataFormatError,
     ["no training data"]),
    ("missing_stimulus", _unknown_response, _stimuli(), DataFormatError,
     ["responses_unseen_movie", "stimuli/unseen_movie.npy", "stimulus_unseen_movie"]),
    ("missing_stimuli_folder", lambda d: shutil.rmtree(d / "stimuli"), _responses(), DataFormatError,
     ["has no stimulus"]),
    ("nan_responses", _nan_responses, _responses(), NonFiniteDataError,
     [f"responses_{TRAIN}", "3 non-finite", "(1, 5)", SESSION]),
    ("nan_stimulus", lambda d: np.save(d / "stimuli" / f"{TEST}.npy", np.full((C, 70, H, W), np.inf, np.float32)),
     _stimuli(), NonFiniteDataError, [f"{TEST}.npy", str(C * 70 * H * W), "+inf"]),
    ("per_trial_shape", _wrong_trials, _responses(), DataShapeError,
     [f"responses_by_trial_{TEST}", "(trials, neurons, time)"]),
    ("per_trial_no_average", _trials_without_average, _responses(), DataFormatError,
     ["responses_by_trial_extra", "no trial average"]),
    ("responses_3d", lambda d: _replace(d, f"responses_{TRAIN}", np.ones((2, 3, 71))), _responses(), DataShapeError,
     [f"responses_{TRAIN}", "(2, 3, 71)", "2-D"]),
    ("duplicate_session", lambda d: shutil.copy(d / SESSION, d / "session_0.h5"), _responses(), DataFormatError,
     ["stored twice", "session_0.h5"]),
    ("not_hdf5", lambda d: (d / "broken.h5").write_text("not hdf5"), _stimuli(), DataFormatError,
     ["broken.h5", "not a readable HDF5"]),
    ("group_not_dataset", _group_instead_of_dataset, _responses(), DataFormatError, ["responses_folder", "group"]),
    ("no_responses_in_file", _file_without_responses, _responses(), DataFormatError, ["notes.h5", "no 'responses_"]),
    ("session_info_dataset", _session_info_dataset, _responses(), DataFormatError, ["'session_info' is a dataset"]),
    ("pickled_stimulus", lambda d: np.save(d / "stimuli" / f"{TEST}.npy", np.array([{}]), allow_pickle=True),
     _stimuli(), DataFormatError, [f"{TEST}.npy", "numeric"]),
    ("zero_norm_std", None, _stimuli(norm_mean=0.0, norm_std=0.0), DataFormatError, ["norm_std=0.0", "positive"]),
    ("h5_key_missing", None, lambda d: load_dataset_from_h5(d / SESSION, "session_info/eye"), DataFileNotFoundError,
     ["session_info/eye", "print_h5_structure"]),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore:No 'stimuli/' folder")  # expected in the missing_stimuli_folder case
@pytest.mark.parametrize(("mutate", "call", "error", "words"), [c[1:] for c in READER_CASES],
                         ids=[c[0] for c in READER_CASES])  # fmt: skip
def test_malformed_dataset_raises_and_leaves_files_intact(
    dataset: Path, mutate: Mutation | None, call: ReaderCall, error: type[Exception], words: list[str]
) -> None:
    if mutate is not None:
        mutate(dataset)
    before = _fingerprint(dataset)
    with pytest.raises(error) as raised:
        call(dataset)
    assert isinstance(raised.value, OpenRetinaError)
    message = str(raised.value)
    for word in words:
        assert word in message, f"{word!r} missing from message: {message}"
    assert _fingerprint(dataset) == before


def _movie(t: int = 20, c: int = C, h: int = 4, w: int = 3) -> np.ndarray:
    return np.zeros((c, t, h, w), dtype=np.float32)


def _inf_movie() -> np.ndarray:
    movie = _movie(10)
    movie[1, 4, 2, 0] = np.inf
    return movie


def _nan_responses_array() -> np.ndarray:
    responses = np.ones((5, 10))
    responses[3, 7] = np.nan
    return responses


CONTAINER_CASES: list[tuple[str, Callable[[], Any], type[Exception], list[str]]] = [
    ("movie_train_3d", lambda: MoviesTrainTestSplit(np.zeros((C, 20, 4)), test=_movie()), DataShapeError,
     ["'train'", "4-D", "(2, 20, 4)"]),
    ("movie_channels", lambda: MoviesTrainTestSplit(_movie(), test=_movie(c=3)), DataShapeError,
     ["3 channels", "2"]),
    ("movie_spatial", lambda: MoviesTrainTestSplit(_movie(), test=_movie(h=5)), DataShapeError, ["(5, 3)", "(4, 3)"]),
    ("movie_no_test", lambda: MoviesTrainTestSplit(_movie(), test_dict={}), DataFormatError, ["no test stimulus"]),
    ("movie_test_and_dict", lambda: MoviesTrainTestSplit(_movie(), test_dict={"a": _movie()}, test=_movie()),
     DataFormatError, ["both", "test_dict"]),
    ("movie_inf", lambda: MoviesTrainTestSplit(_movie(), test_dict={"flash": _inf_movie()}), NonFiniteDataError,
     ["'flash'", "1 non-finite", "(1, 4, 2, 0)"]),
    ("responses_nan", lambda: ResponsesTrainTestSplit(_nan_responses_array(), test=np.ones((5, 4))),
     NonFiniteDataError, ["'train'", "1 non-finite", "(3, 7)"]),
    ("responses_neurons", lambda: ResponsesTrainTestSplit(np.ones((5, 10)), test=np.ones((6, 4))), DataShapeError,
     ["5 neurons", "6"]),
    ("responses_trials_shape",
     lambda: ResponsesTrainTestSplit(np.ones((5, 10)), test=np.ones((5, 4)), test_by_trial=np.ones((3, 4, 5))),
     DataShapeError, ["(trials, neurons, time)", "(3, 4, 5)", "transpose"]),
    ("responses_trials_key",
     lambda: ResponsesTrainTestSplit(np.ones((5, 10)), test_dict={"a": np.ones((5, 4))},
                                     test_by_trial_dict={"b": np.ones((2, 5, 4))}),
     DataFormatError, ["['b']", "test_dict"]),
    ("responses_train_1d", lambda: ResponsesTrainTestSplit(np.ones(10), test=np.ones((5, 4))), DataShapeError,
     ["'train'", "2-D"]),
]  # fmt: skip


@pytest.mark.parametrize(("build", "error", "words"), [c[1:] for c in CONTAINER_CASES],
                         ids=[c[0] for c in CONTAINER_CASES])  # fmt: skip
def test_malformed_container_raises(build: Callable[[], Any], error: type[Exception], words: list[str]) -> None:
    with pytest.raises(error) as raised:
        build()
    message = str(raised.value)
    for word in words:
        assert word in message, f"{word!r} missing from message: {message}"


def test_create_data_into_existing_dataset_leaves_it_intact(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    before = _fingerprint(dataset)
    assert create_data_main([str(dataset), "--num-colors", str(C), "--seed", "1"]) == 1
    assert "Refusing to overwrite" in capsys.readouterr().err
    assert _fingerprint(dataset) == before
