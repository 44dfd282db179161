"""Reading the native HDF5 layout: values, order, extensions, memory sharing, and the atomic writer."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from openretina.data_io.h5_dataset_reader import load_responses, load_stimuli
from openretina.data_io.h5_writer import OutputExistsError, write_session_file, write_stimulus

C, H, W = 2, 4, 3
N = 5
# Stimulus names chosen so that sorted order ("alpha", "beta", "gamma") differs from creation order.
LENGTHS = {"beta": 7, "alpha": 6, "gamma": 4}


@pytest.fixture
def dataset(tmp_path: Path, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Two sessions ("s_b" .hdf5, "s_a" .h5) seeing three shared float32 stimuli; "gamma" is the test."""
    movies = {name: rng.normal(size=(C, t, H, W)).astype(np.float32) for name, t in LENGTHS.items()}
    for name, movie in movies.items():
        write_stimulus(tmp_path, name, movie)
    responses = {}
    for session, suffix in (("s_b", ".hdf5"), ("s_a", ".h5")):
        responses[session] = {name: rng.uniform(size=(N, t)) for name, t in LENGTHS.items()}
        write_session_file(tmp_path / f"{session}{suffix}", responses[session])
    return {"movies": movies, **responses}


def test_train_is_sorted_concatenation_and_test_is_held_out(tmp_path: Path, dataset: dict) -> None:
    movies = load_stimuli(tmp_path, ["gamma"], [C, H, W], None, None)
    responses = load_responses(tmp_path, ["gamma"])
    assert list(movies) == ["s_a", "s_b"] and list(responses) == ["s_a", "s_b"]
    expected_movie = np.concatenate([dataset["movies"]["alpha"], dataset["movies"]["beta"]], axis=1)
    for session in ("s_a", "s_b"):
        np.testing.assert_array_equal(movies[session].train, expected_movie)
        np.testing.assert_array_equal(movies[session].test_dict["gamma"], dataset["movies"]["gamma"])
        expected_responses = np.concatenate([dataset[session]["alpha"], dataset[session]["beta"]], axis=1)
        np.testing.assert_array_equal(responses[session].train, expected_responses)
        np.testing.assert_array_equal(responses[session].test_dict["gamma"], dataset[session]["gamma"])
        assert responses[session].train.dtype == np.float64  # the stored dtype is kept
        assert responses[session].test_by_trial_dict == {}
        assert responses[session].session_kwargs == {}
        responses[session].check_matching_stimulus(movies[session])


def test_normalisation_is_applied_once_and_shared(tmp_path: Path, dataset: dict) -> None:
    movies = load_stimuli(tmp_path, ["gamma"], [C, H, W], norm_mean=0.25, norm_std=2.0)
    raw = dataset["movies"]
    expected_test = ((raw["gamma"].astype(np.float64) - 0.25) / 2.0).astype(np.float32)
    for split in movies.values():
        assert split.norm_mean == 0.25 and split.norm_std == 2.0
        assert split.train.dtype == np.float32
        np.testing.assert_allclose(split.test_dict["gamma"], expected_test, atol=1e-6)
        np.testing.assert_allclose(split.train[:, : LENGTHS["alpha"]], (raw["alpha"] - 0.25) / 2.0, atol=1e-6)
    # One array per stimulus and one training movie for sessions with the same training stimuli.
    assert movies["s_a"].test_dict["gamma"] is movies["s_b"].test_dict["gamma"]
    assert movies["s_a"].train is movies["s_b"].train
    assert not movies["s_a"].train.flags.writeable


def test_unnormalised_float32_stimuli_stay_memory_mapped(tmp_path: Path, dataset: dict) -> None:
    movies = load_stimuli(tmp_path, ["alpha", "gamma"], [C, H, W], None, None)
    # A single training stimulus ("beta") is passed on as the memory map itself, as are the test stimuli.
    for split in movies.values():
        assert isinstance(split.train, np.memmap)
        assert isinstance(split.test_dict["alpha"], np.memmap)
    assert movies["s_a"].train is movies["s_b"].train


def test_non_float32_stimulus_is_converted(tmp_path: Path, dataset: dict) -> None:
    movie = np.arange(C * 9 * H * W, dtype=np.int16).reshape(C, 9, H, W)
    write_stimulus(tmp_path, "beta", movie, overwrite=True)
    for session in ("s_a.h5", "s_b.hdf5"):
        with h5py.File(tmp_path / session, "a") as file:
            del file["responses_beta"]
            file["responses_beta"] = np.ones((N, 9))
    movies = load_stimuli(tmp_path, ["gamma"], [C, H, W])
    beta = movies["s_a"].train[:, LENGTHS["alpha"] :]
    assert beta.dtype == np.float32
    np.testing.assert_array_equal(beta, movie.astype(np.float32))


def test_session_specific_stimulus_without_shared_file(tmp_path: Path, rng: np.random.Generator) -> None:
    # Weak point of the reference: a stimulus stored only inside the session file raised KeyError.
    shared = rng.normal(size=(C, 5, H, W)).astype(np.float32)
    own = rng.normal(size=(C, 8, H, W))
    write_stimulus(tmp_path, "test_movie", shared)
    write_session_file(
        tmp_path / "only.h5",
        {"test_movie": np.ones((N, 5)), "private": np.ones((N, 8))},
        stimuli={"private": own},
    )
    movies = load_stimuli(tmp_path, ["test_movie"], [C, H, W], 1.0, 0.5)
    np.testing.assert_allclose(movies["only"].train, (own - 1.0) / 0.5, atol=1e-6)
    np.testing.assert_array_equal(load_responses(tmp_path, ["test_movie"])["only"].train, np.ones((N, 8)))


def test_session_stimulus_overrides_shared_one(tmp_path: Path, dataset: dict) -> None:
    override = np.full((C, LENGTHS["alpha"], H, W), 7.0, dtype=np.float32)
    with h5py.File(tmp_path / "s_a.h5", "a") as file:
        file["stimulus_alpha"] = override
    movies = load_stimuli(tmp_path, ["gamma"], [C, H, W])
    np.testing.assert_array_equal(movies["s_a"].train[:, : LENGTHS["alpha"]], override)
    np.testing.assert_array_equal(movies["s_b"].train[:, : LENGTHS["alpha"]], dataset["movies"]["alpha"])
    assert movies["s_a"].train is not movies["s_b"].train


def test_extensions_trials_attributes_and_session_info(tmp_path: Path, rng: np.random.Generator) -> None:
    write_stimulus(tmp_path, "train", rng.normal(size=(C, 10, H, W)).astype(np.float32))
    write_stimulus(tmp_path, "test", rng.normal(size=(C, 6, H, W)).astype(np.float32))
    trials = rng.poisson(2.0, size=(4, N, 6)).astype(np.float32)
    celltypes = np.arange(N)
    write_session_file(
        tmp_path / "rec.hdf5",
        {"train": rng.uniform(size=(N, 10)), "test": trials.mean(axis=0)},
        responses_by_trial={"test": trials},
        session_info={"celltypes": celltypes, "names": ["on", "off", "on", "on", "off"], "extra": {"depth": [1.5]}},
        sampling_rate_hz=30.0,
        stim_id="noise",
    )
    with h5py.File(tmp_path / "rec.hdf5", "a") as file:
        file["session_info"].attrs["eye"] = "left"
        file["session_info/roi"] = np.zeros((N, 2))

    responses = load_responses(tmp_path, ["test"])["rec"]
    movies = load_stimuli(tmp_path, ["test"], [C, H, W])["rec"]
    np.testing.assert_array_equal(responses.test_by_trial_dict["test"], trials)
    np.testing.assert_allclose(responses.test_dict["test"], trials.mean(axis=0))
    assert responses.stim_id == "noise" and movies.stim_id == "noise"
    kwargs = responses.session_kwargs
    assert set(kwargs) == {"celltypes", "names", "roi", "extra", "eye", "sampling_rate_hz"}
    np.testing.assert_array_equal(kwargs["celltypes"], celltypes)
    assert kwargs["names"].tolist() == ["on", "off", "on", "on", "off"]
    assert kwargs["eye"] == "left" and kwargs["sampling_rate_hz"] == 30.0
    np.testing.assert_array_equal(kwargs["extra"]["depth"], [1.5])
    responses.check_matching_stimulus(movies)


def test_per_trial_responses_of_a_train_stimulus_are_ignored_with_warning(tmp_path: Path, dataset: dict) -> None:
    with h5py.File(tmp_path / "s_a.h5", "a") as file:
        file["responses_by_trial_alpha"] = np.stack([dataset["s_a"]["alpha"]] * 3)
    with pytest.warns(UserWarning, match="responses_by_trial_alpha' is ignored"):
        responses = load_responses(tmp_path, ["gamma"])
    assert responses["s_a"].test_by_trial_dict == {}


def test_session_info_attribute_clashing_with_dataset_is_rejected(tmp_path: Path, dataset: dict) -> None:
    with h5py.File(tmp_path / "s_a.h5", "a") as file:
        file["session_info/eye"] = np.array([0])
        file["session_info"].attrs["eye"] = "left"
    with pytest.raises(ValueError, match="'eye' is defined twice"):
        load_responses(tmp_path, ["gamma"])


def test_writer_refuses_to_overwrite_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = write_session_file(tmp_path / "s.hdf5", {"x": np.ones((2, 3))})
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match=r"s\.hdf5"):
        write_session_file(path, {"x": np.zeros((2, 3))})
    assert path.read_bytes() == before
    write_session_file(path, {"x": np.zeros((2, 3))}, overwrite=True)
    with h5py.File(path, "r") as file:
        np.testing.assert_array_equal(file["responses_x"][...], np.zeros((2, 3)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.hdf5"]


def test_writer_removes_partial_file_on_failure(tmp_path: Path) -> None:
    class Boom:
        def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_session_file(tmp_path / "s.hdf5", {"x": np.ones((2, 3)), "y": Boom()})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def _python_blocks(markdown: str) -> list[str]:
    return [block.split("```", 1)[0] for block in markdown.split("```python\n")[1:]]


def test_docs_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    blocks = _python_blocks((Path(__file__).parents[2] / "docs" / "hdf5_format.md").read_text())
    conversion = next(block for block in blocks if "h5py.File(" in block)
    monkeypatch.chdir(tmp_path)
    exec(compile(conversion, "hdf5_format.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    expected = [
        line.removeprefix("# ") for line in conversion.splitlines() if line.startswith("# (") or line == "# 30.0"
    ]
    assert printed == expected
    for block in blocks:  # the other snippets read the dataset the conversion example wrote
        if block is not conversion:
            exec(compile(block, "hdf5_format.md", "exec"), {})
