"""Sridhar et al. 2025 data-io helpers on tiny files in the published layout."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openretina.data_io.sridhar_2025.constants import NM_RESPONSE_FILES, SESSION_01_TEST_REPEATS
from openretina.data_io.sridhar_2025.dataloader_utils import (
    filter_trials,
    get_locations_from_stas,
    get_trial_wise_validation_split,
    sta_file_name,
)
from openretina.data_io.sridhar_2025.dataloaders import process_fixations
from openretina.data_io.sridhar_2025.responses import load_responses, response_splits_from_pickles
from openretina.data_io.sridhar_2025.stimuli import build_movies_from_responses, load_frames
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError, NonFiniteDataError

N, FRAMES, TRIALS, T_TEST, REPEATS = 5, 12, 6, 8, 20


def _write_pickle(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(content, handle)


@pytest.fixture
def pickles(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, dict[str, dict[str, Any]]]:
    contents: dict[str, dict[str, Any]] = {
        "01": {  # two seeds; the requested seed decides the trials
            "train_responses": rng.random((N, FRAMES, TRIALS)),
            "test_responses": rng.random((N, T_TEST, REPEATS)),
            "seeds": [2022, 2023],
            "trial_separation": {2022: [0, 1, 2], 2023: [3, 4, 5]},
        },
        "02": {"train_responses": rng.random((N, FRAMES, TRIALS)), "test_responses": rng.random((N, T_TEST))},
    }
    for session, content in contents.items():
        _write_pickle(tmp_path / NM_RESPONSE_FILES[session], content)
    return tmp_path, contents


def test_load_responses_seeds_exclusions_and_session_01(pickles) -> None:
    root, contents = pickles
    files = {s: NM_RESPONSE_FILES[s] for s in contents}
    by_seed = load_responses(root, files, stimulus_seed=2023, excluded_cells={"01": [1, 3]})
    first = by_seed["01"]
    assert first["cell_indices"] == [0, 2, 4]
    np.testing.assert_array_equal(first["train_responses"], contents["01"]["train_responses"][[0, 2, 4]][:, :, 3:6])
    assert first["test_responses_by_trial"].shape == (3, T_TEST, 3)  # repeats of seed 2023 only
    np.testing.assert_allclose(first["test_responses"], first["test_responses_by_trial"].mean(axis=-1))
    assert by_seed["02"]["test_responses_by_trial"] is None and by_seed["02"]["cell_indices"] == list(range(N))
    default = load_responses(root, files)["01"]  # seed 0 is not in the file: retina 01 keeps 10 test repeats
    assert default["test_responses_by_trial"].shape == (N, T_TEST, SESSION_01_TEST_REPEATS)
    single = load_responses(root, files, cell_index=2)["02"]
    np.testing.assert_array_equal(single["train_responses"], contents["02"]["train_responses"][2:3])


def test_response_splits_concatenate_whole_trials(pickles) -> None:
    root, contents = pickles
    splits = response_splits_from_pickles(root, {"01": NM_RESPONSE_FILES["01"]}, stimulus_seed=2022)
    split = splits["01"]
    raw = contents["01"]["train_responses"][:, :, :3]
    assert split.train.shape == (N, 3 * FRAMES) and split.train.dtype == np.float32
    np.testing.assert_allclose(split.train[:, FRAMES : 2 * FRAMES], raw[:, :, 1], rtol=1e-6)  # trial 1 in one piece
    by_trial = split.get_test_by_trial()
    assert by_trial is not None and by_trial.shape == (3, N, T_TEST)
    np.testing.assert_allclose(by_trial[2], contents["01"]["test_responses"][:, :, 2], rtol=1e-6)
    assert split.stim_id == "sridhar_01"
    assert split.session_kwargs == {"stimulus_seed": 2022, "frames_per_trial": FRAMES, "num_trials": 3,
                                    "cell_indices": list(range(N))}  # fmt: skip


def test_placeholder_movies_cost_no_memory(pickles) -> None:
    root, contents = pickles
    files = {s: NM_RESPONSE_FILES[s] for s in contents}
    movies = build_movies_from_responses(root, files, channels=1, height=80, width=90, stim_id_prefix="sridhar")
    movie = movies["02"]
    assert movie.train.shape == (1, FRAMES * TRIALS, 80, 90) and movie.test_movie.shape == (1, T_TEST, 80, 90)
    assert movie.stim_id == "sridhar_02" and not movie.train.any()
    assert movie.train.strides == (0, 0, 0, 0)  # a view of one zero, not an allocation
    splits = response_splits_from_pickles(root, files)
    splits["02"].check_matching_stimulus(movie)


def test_response_bad_input(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(DataFileNotFoundError, match="does not exist"):
        load_responses(tmp_path, {"01": "missing.pkl"})
    _write_pickle(tmp_path / "a.pkl", {"train_responses": rng.random((N, FRAMES, TRIALS))})
    with pytest.raises(DataFormatError, match=r"a\.pkl.*'test_responses' is missing"):
        load_responses(tmp_path, {"01": "a.pkl"})
    _write_pickle(
        tmp_path / "b.pkl", {"train_responses": rng.random((N, FRAMES)), "test_responses": rng.random((N, 3))}
    )
    with pytest.raises(DataShapeError, match=r"b\.pkl.*'train_responses' must have 3 dimensions"):
        load_responses(tmp_path, {"01": "b.pkl"})
    train = rng.random((N, FRAMES, TRIALS))
    train[1, 2, 3] = np.nan
    _write_pickle(tmp_path / "c.pkl", {"train_responses": train, "test_responses": rng.random((N, 3))})
    with pytest.raises(NonFiniteDataError, match=r"c\.pkl', key 'train_responses'"):
        load_responses(tmp_path, {"01": "c.pkl"})
    content = {"train_responses": rng.random((N, FRAMES, 2)), "test_responses": rng.random((N, 3)), "seeds": [7],
               "trial_separation": {7: [0, 5]}}  # fmt: skip
    _write_pickle(tmp_path / "d.pkl", content)
    with pytest.raises(DataFormatError, match="outside the 2 recorded trials"):
        load_responses(tmp_path, {"01": "d.pkl"}, stimulus_seed=7)


def test_process_fixations() -> None:
    lines = ["12.0 0 0 350 175 1\n", "3 0 0 10.0 20 0x\n", "4 0 0 1 2 1"]
    parsed = process_fixations(lines)
    assert parsed[0] == {"img_index": 12, "center_x": 350, "center_y": 175, "flip": 1}
    assert [f["flip"] for f in parsed] == [1, 0, 1]
    assert [f["flip"] for f in process_fixations(lines, flip_imgs=True)] == [0, 1, 0]
    assert [f["img_index"] for f in process_fixations(lines, select_flip=1)] == [12, 4]
    with pytest.raises(DataFormatError, match="fixation line 0"):
        process_fixations(["1 2"])


def test_trial_split_matches_legacy_global_seeding_without_touching_it() -> None:
    responses = np.zeros((2, 3, 20))
    before = pickle.dumps(np.random.get_state())  # noqa: NPY002 -- the legacy global state is what must stay put
    train_ids, val_ids = get_trial_wise_validation_split(responses, 0.8, seed=3)
    assert pickle.dumps(np.random.get_state()) == before  # noqa: NPY002
    legacy = np.random.RandomState(3)  # what np.random.seed(3); np.random.permutation(...) draws
    while True:
        order = legacy.permutation(20)
        tr, va = order[:16], order[16:]
        if not any((a in tr and b in va) or (b in tr and a in va) for a, b in ((0, 9), (10, 19))):
            break
    np.testing.assert_array_equal(train_ids, tr)
    np.testing.assert_array_equal(val_ids, va)
    assert sorted([*train_ids, *val_ids]) == list(range(20))
    merged, _ = get_trial_wise_validation_split(responses, 0.8, seed=3, final_training=True)
    assert sorted(merged) == list(range(20))
    assert [list(x) for x in get_trial_wise_validation_split(responses, 0.5, hard_coded=([1], [2]))] == [[1], [2]]


def test_filter_trials() -> None:
    responses = np.zeros((1, 1, 10))
    train, val = filter_trials(responses, [0, 3, 5, 8], [1, 9], num_of_trials_to_use=5, starting_trial=2)
    assert train.tolist() == [3, 5] and val.tolist() == []
    train, val = filter_trials(responses, [0, 3, 5, 8], [1, 9], hard_coded=([0], [1]), num_of_trials_to_use=5,
                               starting_trial=2)  # fmt: skip
    assert train.tolist() == [0, 3, 5] and val.tolist() == [1]


def test_sta_locations(tmp_path: Path, rng: np.random.Generator) -> None:
    sta = rng.normal(0, 0.01, (10, 8, 9))
    sta[:, 2, 6] += np.linspace(-1, 1, 10)  # most variable pixel: row 2, column 6
    np.save(tmp_path / sta_file_name(4, "01"), sta)
    assert get_locations_from_stas(tmp_path, "01", [4]).tolist() == [[2, 6]]
    assert get_locations_from_stas(tmp_path, "01", [4], flip_sta=True).tolist() == [[5, 6]]  # height flipped
    assert get_locations_from_stas(tmp_path, "01", [4], crop=(1, 0, 2, 0)).tolist() == [[1, 4]]
    with pytest.raises(DataFileNotFoundError, match="cell 5"):
        get_locations_from_stas(tmp_path, "01", [5])


def test_load_frames(tmp_path: Path, rng: np.random.Generator) -> None:
    images = rng.integers(0, 256, (3, 7, 5))
    for i, image in enumerate(images):
        np.save(tmp_path / f"scene_img_{i:03d}.npy", image)
    np.save(tmp_path / "other.npy", images[0])
    frames = load_frames(tmp_path, "_img_", 7, 5)
    assert frames.shape == (3, 7, 5) and frames.dtype == np.float16
    np.testing.assert_allclose(frames, images / 255, atol=1e-3)
    with pytest.raises(DataShapeError, match=r"scene_img_000\.npy"):
        load_frames(tmp_path, "_img_", 5, 7)
