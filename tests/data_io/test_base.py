"""Tests of the data containers and dataset summaries in openretina.data_io.base."""

# The seed-page snippets are reproduced verbatim and use numpy's legacy random API.
# ruff: noqa: NPY002

from __future__ import annotations

import math
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from openretina.data_io.base import (
    DatasetStatistics,
    MoviesTrainTestSplit,
    ResponsesTrainTestSplit,
    compute_data_info,
    error_context,
    get_n_neurons_per_session,
    normalize_train_test_movies,
)
from openretina.errors import (
    DataFileNotFoundError,
    DataFormatError,
    DataShapeError,
    NonFiniteDataError,
)


def _movies(rng: np.random.Generator, c: int = 2, t: int = 40, h: int = 4, w: int = 5, **kw) -> MoviesTrainTestSplit:
    return MoviesTrainTestSplit(train=rng.random((c, t, h, w)), test=rng.random((c, 10, h, w)), **kw)


def _responses(rng: np.random.Generator, n: int = 3, t: int = 40, **kw) -> ResponsesTrainTestSplit:
    return ResponsesTrainTestSplit(train=rng.random((n, t)), test=rng.random((n, 10)), **kw)


# --- seed-page snippets (public contract) -------------------------------------------------------------------------


def test_seed_page_movies_snippet() -> None:
    example_stimulus = MoviesTrainTestSplit(
        train=np.random.rand(1, 200, 50, 50),
        test=np.random.rand(1, 100, 50, 50),
        stim_id=None,
        norm_mean=None,
        norm_std=None,
    )
    assert example_stimulus.test_shape == (1, 100, 50, 50)
    assert list(example_stimulus.test_dict) == ["test"]
    assert example_stimulus.test_movie.shape == (1, 100, 50, 50)


def test_seed_page_responses_snippet() -> None:
    example_responses = ResponsesTrainTestSplit(
        train=np.random.rand(60, 200),
        test=np.random.rand(60, 100),
        test_by_trial=np.random.rand(10, 60, 100),
        stim_id=None,
        session_kwargs={"cell_types": np.random.randint(1, 42, 60)},
    )
    assert example_responses.n_neurons == 60
    assert example_responses.get_test_by_trial("test").shape == (10, 60, 100)
    assert example_responses.get_test_by_trial("other") is None
    assert example_responses.test_response.shape == (60, 100)


# --- valid containers -------------------------------------------------------------------------------------------


def test_field_order_is_positional_contract(rng: np.random.Generator) -> None:
    train, test = rng.random((1, 20, 2, 2)), rng.random((1, 5, 2, 2))
    movies = MoviesTrainTestSplit(train, {"a": test}, None, "stim", None, 0.5, 2.0)
    assert (movies.stim_id, movies.norm_mean, movies.norm_std) == ("stim", 0.5, 2.0)
    responses = ResponsesTrainTestSplit(rng.random((3, 20)), {"a": rng.random((3, 5))}, None, None, {}, "stim")
    assert responses.stim_id == "stim"


def test_single_test_does_not_mutate_caller_dict(rng: np.random.Generator) -> None:
    shared: dict[str, np.ndarray] = {}
    movies = MoviesTrainTestSplit(rng.random((1, 20, 2, 2)), shared, test=rng.random((1, 5, 2, 2)))
    assert shared == {}
    assert set(movies.test_dict) == {"test"}


def test_multiple_tests_shape_and_accessors(rng: np.random.Generator) -> None:
    movies = MoviesTrainTestSplit(
        rng.random((2, 30, 3, 4)), test_dict={"a": rng.random((2, 7, 3, 4)), "b": rng.random((2, 11, 3, 4))}
    )
    assert movies.test_shape == (2, 11, 3, 4)
    with pytest.raises(DataFormatError, match=r"\['a', 'b'\]"):
        _ = movies.test_movie


def test_containers_accept_tensors_and_memmaps_without_copy(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "movie.npy"
    np.save(path, rng.random((1, 30, 2, 2)).astype(np.float32))
    memmap = np.load(path, mmap_mode="r")
    movies = MoviesTrainTestSplit(memmap, test=torch.rand(1, 5, 2, 2))
    assert movies.train is memmap
    responses = ResponsesTrainTestSplit(torch.rand(4, 30), test=torch.rand(4, 5))
    responses.check_matching_stimulus(movies)


def test_by_trial_goes_to_only_test_key(rng: np.random.Generator) -> None:
    by_trial = rng.random((4, 3, 10))
    responses = ResponsesTrainTestSplit(rng.random((3, 40)), {"natural": rng.random((3, 10))}, test_by_trial=by_trial)
    assert responses.get_test_by_trial("natural") is by_trial


def test_axis_order_warning(rng: np.random.Generator) -> None:
    with pytest.warns(UserWarning, match="more channels"):
        MoviesTrainTestSplit(rng.random((5, 3, 2, 2)), test=rng.random((5, 3, 2, 2)))
    with pytest.warns(UserWarning, match="more neurons"):
        ResponsesTrainTestSplit(rng.random((50, 3)), test=rng.random((50, 3)))


def test_from_pickle(tmp_path: Path, rng: np.random.Generator) -> None:
    content = {
        "train": rng.random((2, 20, 3, 3)),
        "test": rng.random((2, 5, 3, 3)),
        "random_sequences": np.arange(6, dtype=np.uint8).reshape(3, 2),
        "movie_stats": {"dichromatic": {"mean": np.array(3.5), "sd": np.array([[1.5]])}},
    }
    path = tmp_path / "movies.pkl"
    path.write_bytes(pickle.dumps(content))
    movies = MoviesTrainTestSplit.from_pickle(path)
    assert (movies.norm_mean, movies.norm_std) == (3.5, 1.5)
    np.testing.assert_array_equal(movies.random_sequences, content["random_sequences"])
    del content["movie_stats"]
    path.write_bytes(pickle.dumps(content))
    movies = MoviesTrainTestSplit.from_pickle(path)
    assert math.isnan(movies.norm_mean) and math.isnan(movies.norm_std)
    with pytest.raises(DataFileNotFoundError, match=r"missing\.pkl"):
        MoviesTrainTestSplit.from_pickle(tmp_path / "missing.pkl")


# --- malformed inputs: each names the array and expected vs actual -----------------------------------------------


def test_movie_wrong_ndim(rng: np.random.Generator) -> None:
    with pytest.raises(DataShapeError, match=r"movie 'train' must be 4-D .* got shape \(2, 40, 4\)"):
        MoviesTrainTestSplit(rng.random((2, 40, 4)), test=rng.random((2, 10, 4, 5)))


def test_test_movie_wrong_ndim(rng: np.random.Generator) -> None:
    with pytest.raises(DataShapeError, match=r"test movie 'x' must be 4-D"):
        MoviesTrainTestSplit(rng.random((2, 40, 4, 5)), {"x": rng.random((40, 4, 5))})


def test_channel_mismatch(rng: np.random.Generator) -> None:
    with pytest.raises(DataShapeError, match="test movies have 3 channels but movie 'train' has 2"):
        MoviesTrainTestSplit(rng.random((2, 40, 4, 5)), test=rng.random((3, 10, 4, 5)))


def test_spatial_mismatch(rng: np.random.Generator) -> None:
    with pytest.raises(DataShapeError, match=r"\(4, 6\) pixels .* is \(4, 5\)"):
        MoviesTrainTestSplit(rng.random((2, 40, 4, 5)), test=rng.random((2, 10, 4, 6)))


def test_test_movies_disagree(rng: np.random.Generator) -> None:
    with pytest.raises(DataShapeError, match="test movie 'b' has"):
        MoviesTrainTestSplit(rng.random((2, 40, 4, 5)), {"a": rng.random((2, 9, 4, 5)), "b": rng.random((2, 9, 4, 4))})


@pytest.mark.parametrize("container", ["movies", "responses"])
def test_empty_test_dict(container: str, rng: np.random.Generator) -> None:
    with pytest.raises(DataFormatError, match="no test stimulus"):
        if container == "movies":
            MoviesTrainTestSplit(rng.random((2, 40, 4, 5)))
        else:
            ResponsesTrainTestSplit(rng.random((3, 40)), {})


@pytest.mark.parametrize("container", ["movies", "responses"])
def test_both_test_and_test_dict(container: str, rng: np.random.Generator) -> None:
    with pytest.raises(DataFormatError, match=r"both `test` and `test_dict` \(keys \['a'\]\)"):
        if container == "movies":
            MoviesTrainTestSplit(rng.random((2, 40, 4, 5)), {"a": rng.random((2, 5, 4, 5))}, rng.random((2, 5, 4, 5)))
        else:
            ResponsesTrainTestSplit(rng.random((3, 40)), {"a": rng.random((3, 5))}, rng.random((3, 5)))


def test_nan_responses_reported_with_count_and_first_index(rng: np.random.Generator) -> None:
    train = rng.random((3, 40))
    train[1, 7] = np.nan
    train[2, 0] = np.nan
    train[0, 39] = -np.inf
    with pytest.raises(NonFiniteDataError) as info:
        ResponsesTrainTestSplit(train, test=rng.random((3, 10)))
    message = str(info.value)
    assert "responses 'train' contains 3 non-finite values out of 120" in message
    assert "(2 NaN, 0 +inf, 1 -inf)" in message
    assert "first at index (0, 39)" in message  # row-major first offending element


def test_inf_stimulus(rng: np.random.Generator) -> None:
    test = rng.random((2, 10, 4, 5))
    test[1, 3, 2, 1] = np.inf
    with pytest.raises(NonFiniteDataError, match=r"test movie 'test' contains 1 non-finite .* index \(1, 3, 2, 1\)"):
        MoviesTrainTestSplit(rng.random((2, 40, 4, 5)), test=test)


def test_nan_in_torch_tensor_and_by_trial(rng: np.random.Generator) -> None:
    train = torch.rand(3, 40)
    train[0, 2] = float("nan")
    with pytest.raises(NonFiniteDataError, match="1 NaN"):
        ResponsesTrainTestSplit(train, test=torch.rand(3, 10))
    by_trial = rng.random((2, 3, 10))
    by_trial[1, 1, 1] = np.nan
    with pytest.raises(NonFiniteDataError, match="per-trial test responses 'test'"):
        ResponsesTrainTestSplit(rng.random((3, 40)), test=rng.random((3, 10)), test_by_trial=by_trial)


def test_by_trial_wrong_shape_suggests_transpose(rng: np.random.Generator) -> None:
    with pytest.raises(DataShapeError, match=r"\(R, 3, 10\) .* got \(3, 10, 4\).*np.transpose\(x, \(2, 0, 1\)\)"):
        ResponsesTrainTestSplit(rng.random((3, 40)), test=rng.random((3, 10)), test_by_trial=rng.random((3, 10, 4)))
    with pytest.raises(DataShapeError, match=r"got \(4, 3, 9\)\.$"):
        ResponsesTrainTestSplit(rng.random((3, 40)), test=rng.random((3, 10)), test_by_trial=rng.random((4, 3, 9)))


def test_by_trial_key_not_in_test_dict(rng: np.random.Generator) -> None:
    with pytest.raises(DataFormatError, match=r"keys \['b'\] have no averaged responses .* \(keys \['a'\]\)"):
        ResponsesTrainTestSplit(
            rng.random((3, 40)), {"a": rng.random((3, 5))}, test_by_trial_dict={"b": rng.random((2, 3, 5))}
        )


def test_by_trial_ambiguous_with_several_tests(rng: np.random.Generator) -> None:
    with pytest.raises(DataFormatError, match="ambiguous with 2 test stimuli"):
        ResponsesTrainTestSplit(
            rng.random((3, 40)), {"a": rng.random((3, 5)), "b": rng.random((3, 5))}, test_by_trial=rng.random((2, 3, 5))
        )


def test_neuron_count_mismatch(rng: np.random.Generator) -> None:
    with pytest.raises(DataShapeError, match="'train' has 3 neurons but the test responses have 4"):
        ResponsesTrainTestSplit(rng.random((3, 40)), test=rng.random((4, 10)))
    with pytest.raises(DataShapeError, match="disagree in neuron count"):
        ResponsesTrainTestSplit(rng.random((3, 40)), {"a": rng.random((3, 5)), "b": rng.random((2, 5))})


def test_responses_wrong_ndim(rng: np.random.Generator) -> None:
    with pytest.raises(DataShapeError, match=r"responses 'train' must be 2-D .* got shape \(3,\)"):
        ResponsesTrainTestSplit(rng.random(3), test=rng.random((3, 10)))


def test_check_matching_stimulus_messages(rng: np.random.Generator) -> None:
    movies = _movies(rng)
    with pytest.raises(DataShapeError, match=r"session 's1': responses 'train' have 39 time bins .* has 40 frames"):
        _responses(rng, t=39).check_matching_stimulus(movies, session="s1")
    with pytest.raises(DataShapeError, match="test responses 'test' have 11 time bins but test movie 'test' has 10"):
        ResponsesTrainTestSplit(rng.random((3, 40)), test=rng.random((3, 11))).check_matching_stimulus(movies)
    with pytest.raises(DataFormatError, match=r"responses have \['other'\], movies have \['test'\]"):
        ResponsesTrainTestSplit(rng.random((3, 40)), {"other": rng.random((3, 10))}).check_matching_stimulus(movies)
    with pytest.raises(DataFormatError, match="stim_id 'b'"):
        _responses(rng, stim_id="a").check_matching_stimulus(_movies(rng, stim_id="b"))
    _responses(rng, stim_id="a").check_matching_stimulus(_movies(rng, stim_id="a"))


def test_error_context_prefixes_session(rng: np.random.Generator) -> None:
    with (
        pytest.raises(DataShapeError, match=r"^session 'left_eye': movie 'train' must be 4-D"),
        error_context("session 'left_eye'"),
    ):
        MoviesTrainTestSplit(rng.random((2, 40, 4)), test=rng.random((2, 10, 4, 5)))


# --- helpers ----------------------------------------------------------------------------------------------------


def test_normalize_train_test_movies(rng: np.random.Generator) -> None:
    train = rng.normal(5.0, 3.0, (2, 50, 3, 3))
    test = rng.normal(5.0, 3.0, (2, 10, 3, 3))
    train_n, test_n, stats = normalize_train_test_movies(train, test)
    assert stats["norm_mean"] == pytest.approx(train.mean(), rel=1e-12)
    assert stats["norm_std"] == pytest.approx(train.std(ddof=1), rel=1e-12)  # unbiased
    assert train_n.dtype == np.float32 and test_n.dtype == np.float32
    np.testing.assert_allclose(test_n, (test - train.mean()) / train.std(ddof=1), rtol=1e-5, atol=1e-6)
    assert abs(float(train_n.mean())) < 1e-6


def test_get_n_neurons_and_statistics(rng: np.random.Generator) -> None:
    assert get_n_neurons_per_session({"a": _responses(rng, n=3), "b": _responses(rng, n=5)}) == {"a": 3, "b": 5}
    empty = DatasetStatistics.empty()
    assert empty.unique_test_frames == {} and empty.n_sessions == 0 and empty.unique_train_frames == 0


def test_compute_data_info_keys_and_values(rng: np.random.Generator) -> None:
    responses = {"a": _responses(rng, n=3, session_kwargs={"eye": "left"}), "b": _responses(rng, n=2)}
    movies = {"a": _movies(rng, norm_mean=10.0, norm_std=2.0), "b": _movies(rng, norm_mean=10.0, norm_std=2.0)}
    info = compute_data_info(responses, movies, partial_data_info={"stimulus": "natural"})
    assert list(info) == [
        "n_neurons_dict",
        "mean_activity_dict",
        "input_shape",
        "sessions_kwargs",
        "stim_mean",
        "stim_std",
        "stimulus",
    ]
    assert info["n_neurons_dict"] == {"a": 3, "b": 2}
    assert info["input_shape"] == (2, 4, 5)
    assert info["sessions_kwargs"]["a"] == {"eye": "left"}
    assert (info["stim_mean"], info["stim_std"]) == (10.0, 2.0)
    mean_a = info["mean_activity_dict"]["a"]
    assert mean_a.dtype == torch.float32
    np.testing.assert_allclose(mean_a.numpy(), responses["a"].train.mean(axis=1), rtol=1e-6)


def test_compute_data_info_single_movie_and_defaults(rng: np.random.Generator) -> None:
    movies = _movies(rng)
    info = compute_data_info({"a": _responses(rng)}, movies)
    assert info["stim_mean"] is None and info["input_shape"] == (2, 4, 5)
    with pytest.warns(UserWarning, match="no session records `norm_(mean|std)`"):
        info = compute_data_info({"a": _responses(rng)}, {"a": movies})
    assert (info["stim_mean"], info["stim_std"]) == (0.0, 1.0)


def test_compute_data_info_relative_norm_tolerance(rng: np.random.Generator) -> None:
    responses = {"a": _responses(rng), "b": _responses(rng)}
    close = {"a": _movies(rng, norm_mean=100.0, norm_std=1.0), "b": _movies(rng, norm_mean=100.05, norm_std=1.0)}
    assert compute_data_info(responses, close)["stim_mean"] == 100.0
    # 0.5 apart: accepted by the reference's absolute tolerance of 1.0, rejected here.
    far = {"a": _movies(rng, norm_mean=1.0, norm_std=1.0), "b": _movies(rng, norm_mean=1.5, norm_std=1.0)}
    with pytest.raises(DataFormatError, match=re.escape("session 'b' has norm_mean=1.5 but session 'a' has 1.0")):
        compute_data_info(responses, far)


def test_compute_data_info_shape_and_session_mismatch(rng: np.random.Generator) -> None:
    responses = {"a": _responses(rng), "b": _responses(rng)}
    with pytest.raises(DataShapeError, match=r"'b': \(2, 4, 6\)"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        compute_data_info(responses, {"a": _movies(rng), "b": _movies(rng, w=6)})
    with pytest.raises(DataFormatError, match=r"sessions \['b'\] have responses but no movies"):
        compute_data_info(responses, {"a": _movies(rng)})
