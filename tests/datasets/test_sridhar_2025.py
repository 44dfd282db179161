"""Sridhar et al. 2025 data-io helpers on tiny files in the published layout."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from openretina.data_io.sridhar_2025._chunking import crop_margins, frame_overhead
from openretina.data_io.sridhar_2025.constants import (
    NM_FIXATION_FILES,
    NM_RESPONSE_FILES,
    SESSION_01_TEST_REPEATS,
    TEST_DATA_FRAMES,
    WN_RESPONSE_FILES,
)
from openretina.data_io.sridhar_2025.dataloader_utils import (
    filter_trials,
    get_locations_from_stas,
    get_trial_wise_validation_split,
    sta_file_name,
)
from openretina.data_io.sridhar_2025.dataloaders import (
    ChunkedSampler,
    MarmosetMovieDataset,
    NoiseDataset,
    flatten_collate_fn,
    frame_movie_loader,
    infer_noise_folders,
    process_fixations,
    receptive_field_location,
    white_noise_loader,
)
from openretina.data_io.sridhar_2025.responses import load_responses, response_splits_from_pickles
from openretina.data_io.sridhar_2025.sample_data import (
    SampleRecording,
    write_sample_natural_movie,
    write_sample_white_noise,
)
from openretina.data_io.sridhar_2025.stimuli import build_movies_from_responses, load_frames
from openretina.errors import (
    DataFileNotFoundError,
    DataFormatError,
    DataShapeError,
    InsufficientFramesError,
    NonFiniteDataError,
)
from openretina.eval.chunked import predict_test_loader

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


# ------------------------------------------------------------------------------------------------------------------
# Movie side: chunked datasets and loaders on tiny native file sets.
# ------------------------------------------------------------------------------------------------------------------
NM_GEOMETRY: dict[str, Any] = {
    "img_dir_name": "stimuli_padded_4", "full_img_w": 350, "full_img_h": 300, "img_w": 200, "img_h": 150,
    "padding": 50, "subsample": 2, "num_of_frames": [5, 3], "num_of_layers": 2, "time_chunk_size": 8,
}  # fmt: skip
NM_CROP = (35, 35, 55, 55)  # top, bottom, left, right -> 80 x 90, subsampled by 2 -> 40 x 45
OVERHEAD, CHUNK = 4 + 2, 8  # (5 - 1) + (3 - 1) frames of temporal context, time_chunk_size
SAMPLE = SampleRecording()  # 3 neurons, 5 trials of 70 frames, 60 test frames x 3 repeats


@pytest.fixture(scope="module")
def nm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_natural_movie(tmp_path_factory.mktemp("sridhar"), ("01", "02"), SAMPLE)


@pytest.fixture(scope="module")
def wn_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_white_noise(tmp_path_factory.mktemp("sridhar"), ("01", "02"), SAMPLE, height=30, width=32)


def nm_loaders(root: Path, **overrides: Any) -> dict[str, dict[str, Any]]:
    arguments = {"big_crops": {"01": NM_CROP, "02": NM_CROP}, "batch_size": 4, "seed": 3, **NM_GEOMETRY, **overrides}
    fixations = {s: NM_FIXATION_FILES[s] for s in ("01", "02")}
    return frame_movie_loader(dict(NM_RESPONSE_FILES), fixations, basepath=root, **arguments)


def raw_pickle(root: Path, relative: str) -> dict[str, Any]:
    with (root / relative).open("rb") as handle:
        return pickle.load(handle)


def naive_nm_frame(root: Path, retina: str, line: int, crop: tuple[int, ...] = NM_CROP, step: int = 2) -> np.ndarray:
    """One displayed frame computed directly from the files: window, mirror, transpose, crop, /255."""
    tokens = (root / NM_FIXATION_FILES[retina]).read_text().splitlines()[line].split()
    image_index, cx, cy, flag = int(float(tokens[0])), int(tokens[3]), int(tokens[4]), int(tokens[-1][0])
    images = sorted((root / "stimuli_padded_4").glob("*_img_*.npy"))
    image = np.load(images[image_index]).astype(np.float64) / 255
    window = image[cx + 50 - 100 : cx + 50 + 100, cy + 50 - 75 : cy + 50 + 75]
    if flag == 0:
        window = window[:, ::-1]
    top, bottom, left, right = crop
    return window.T[top : 150 - bottom : step, left : 200 - right : step]


def test_frame_overhead_and_crop_margins() -> None:
    assert frame_overhead([15, 11, 7], num_of_layers=3) == 30  # the NM CNN: T_out = T - 30
    assert frame_overhead(5, 3, num_of_layers=3, temporal_dilation=2) == 4 * 2 + 2 + 2
    assert frame_overhead(5, [3, 4], num_of_layers=3, hidden_temporal_dilation=[1, 3]) == 4 + 2 + 3 * 3
    assert crop_margins(3) == (3, 3, 3, 3) and crop_margins([1, 2, 3, 4]) == (1, 2, 3, 4)
    with pytest.raises(DataFormatError, match="lists 2 layers but num_of_layers is 3"):
        frame_overhead([5, 3], num_of_layers=3)
    with pytest.raises(DataFormatError, match="crop must be"):
        crop_margins([1, 2])


def test_natural_movie_loader_batches_split_and_rendering(nm_root: Path) -> None:
    loaders = nm_loaders(nm_root)
    assert set(loaders) == {"train", "validation", "test"} and set(loaders["train"]) == {"01", "02"}
    train, validation = loaders["train"]["01"].dataset, loaders["validation"]["01"].dataset
    # Trial-wise split of the 5 trials: 4 train, 1 validation, disjoint.
    assert len(train.trial_ids) == 4 and len(validation.trial_ids) == 1
    assert sorted([*train.trial_ids, *validation.trial_ids]) == list(range(SAMPLE.n_trials))
    chunks = (SAMPLE.frames_per_trial - OVERHEAD) // CHUNK
    assert train.chunks_per_trial == chunks and len(train) == 4 * chunks and train.chunk_size == CHUNK + OVERHEAD
    batch = next(iter(loaders["train"]["01"]))
    assert batch.inputs.shape == (4, 1, CHUNK + OVERHEAD, 40, 45) and batch.inputs.dtype == torch.float32
    assert batch.targets.shape == (4, CHUNK, SAMPLE.n_neurons) and batch.targets.dtype == torch.float32
    # Item 2k+1 = second chunk of the k-th training trial: frames [8, 22) of that trial.
    item = chunks + 1
    trial = int(train.trial_ids[1])
    inputs, targets = train[item]
    start = CHUNK
    for offset in (0, 5, CHUNK + OVERHEAD - 1):
        line = TEST_DATA_FRAMES + SAMPLE.frames_per_trial * trial + start + offset
        np.testing.assert_allclose(inputs[0, offset].numpy(), naive_nm_frame(nm_root, "01", line), atol=1e-3)
    raw = raw_pickle(nm_root, NM_RESPONSE_FILES["01"])
    expected = raw["train_responses"][:, start + OVERHEAD : start + OVERHEAD + CHUNK, trial].T
    np.testing.assert_allclose(targets.numpy(), expected, rtol=1e-6)
    assert 0.0 <= float(batch.inputs.min()) and float(batch.inputs.max()) <= 1.0  # images scaled by 1/255


def test_natural_movie_test_split_layout_and_evaluation_contract(nm_root: Path) -> None:
    loader = nm_loaders(nm_root)["test"]["02"]
    dataset = loader.dataset
    raw = raw_pickle(nm_root, NM_RESPONSE_FILES["02"])
    movie, average = dataset[:]
    assert movie.shape == (1, SAMPLE.test_frames, 40, 45) and average.shape == (SAMPLE.test_frames, SAMPLE.n_neurons)
    np.testing.assert_allclose(movie[0, 17].numpy(), naive_nm_frame(nm_root, "02", 17), atol=1e-3)
    np.testing.assert_allclose(average.numpy(), raw["test_responses"].mean(axis=-1).T, rtol=1e-6)
    by_trial = dataset.test_responses_by_trial  # one layout for every dataset: (R, N, T)
    assert by_trial.shape == (SAMPLE.test_repeats, SAMPLE.n_neurons, SAMPLE.test_frames)
    np.testing.assert_allclose(by_trial[1].numpy(), raw["test_responses"][:, :, 1], rtol=1e-6)
    # Chunks in order; the sampler exposes their start frames for the chunked evaluation.
    chunks = (SAMPLE.test_frames - OVERHEAD) // CHUNK
    assert list(loader.sampler) == list(range(chunks)) and loader.dataset.chunk_starts == [
        CHUNK * p for p in range(chunks)
    ]
    batches = list(loader)
    np.testing.assert_allclose(batches[1].targets[0].numpy(), average[4 * CHUNK + OVERHEAD : 5 * CHUNK + OVERHEAD])

    class LastFrameMean(torch.nn.Module):  # a "model" with OVERHEAD frames of temporal context
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(()))

        def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
            return x[:, 0, OVERHEAD:].mean(dim=(-1, -2))[..., None].repeat(1, 1, SAMPLE.n_neurons) * self.weight

    aligned = predict_test_loader(LastFrameMean(), loader, "02")
    np.testing.assert_array_equal(aligned.frames, np.arange(OVERHEAD, OVERHEAD + chunks * CHUNK))
    np.testing.assert_allclose(aligned.predictions[:, 0], movie[0, aligned.frames].mean(dim=(-1, -2)), rtol=1e-5)


def test_natural_movie_dataset_keeps_no_movie_copies(nm_root: Path) -> None:
    loaders = nm_loaders(nm_root)
    datasets = [loaders[split]["01"].dataset for split in ("train", "validation", "test")]
    frames = datasets[0].frames
    assert all(d.frames is frames for d in datasets) and frames.dtype == np.float16  # one shared image array
    assert "movies" not in vars(datasets[2])  # the test movie is rendered only when asked for
    # Everything each dataset holds besides the shared images: fixation table, responses, index tables.
    arrays = {id(v): v for d in datasets for v in vars(d).values() if isinstance(v, np.ndarray) and v is not frames}
    own = [array.nbytes for array in arrays.values()]
    rendered_training_movie = 4 * SAMPLE.frames_per_trial * 40 * 45 * 4  # what pre-rendering would cost (float32)
    fixation_bytes = (TEST_DATA_FRAMES + SAMPLE.n_trials * SAMPLE.frames_per_trial) * 4 * 8
    assert all(d.fixations is datasets[0].fixations for d in datasets)  # one parsed fixation table
    assert sum(own) < fixation_bytes + 3 * (fixation_bytes // 2 + 8 * 1024)  # + x/y origins and responses each
    assert sum(own) < rendered_training_movie


def test_natural_movie_options_and_bad_input(nm_root: Path, tmp_path: Path) -> None:
    single = nm_loaders(nm_root, retina_index="02", cell_index=1, get_locations=False, time_chunk_size=20)
    assert set(single["train"]) == {"02"} and single["train"]["02"].dataset.n_neurons == 1
    with pytest.raises(DataFormatError, match="no receptive-field locations"):
        single["test"]["02"].dataset.get_locations(0)
    located = nm_loaders(nm_root)["test"]["01"].dataset
    sta_cell = np.load(nm_root / "stas" / sta_file_name(2, "01"))[:, ::-1][:, 35:-35, 55:-55]
    assert located.get_locations(2).tolist() == list(np.unravel_index(np.argmax(sta_cell.var(axis=0)), (80, 90)))
    with pytest.raises(InsufficientFramesError, match="shorter than one chunk"):
        nm_loaders(nm_root, time_chunk_size=SAMPLE.frames_per_trial)
    with pytest.raises(DataFormatError, match=r"retinas \['03'\] are not configured"):
        nm_loaders(nm_root, retina_index="03")
    with pytest.raises(DataShapeError, match=r"sample_img_0000\.npy"):
        nm_loaders(nm_root, full_img_w=300, full_img_h=350)
    with pytest.raises(DataFormatError, match=r"fixation line .* outside image"):
        nm_loaders(nm_root, padding=0)
    broken = tmp_path / "natural_movie"
    shutil.copytree(nm_root, broken)
    (broken / NM_FIXATION_FILES["02"]).unlink()
    with pytest.raises(DataFileNotFoundError, match=r"retina '02': fixation file .*seed2022_s4\.txt"):
        nm_loaders(broken)
    lines = (nm_root / NM_FIXATION_FILES["02"]).read_text().splitlines()
    (broken / NM_FIXATION_FILES["02"]).write_text("\n".join(lines[: TEST_DATA_FRAMES + 100]))
    with pytest.raises(DataFormatError, match="needs fixation line"):
        nm_loaders(broken)


def test_dataset_rejects_bad_responses(nm_root: Path) -> None:
    frames = np.zeros((1, 350, 300), dtype=np.float16)
    fixations = np.tile([0, 100, 100, 1], (TEST_DATA_FRAMES + 2 * 40, 1))
    good = {"train_responses": np.ones((2, 40, 2)), "test_responses": np.ones((2, 30))}
    kwargs: dict[str, Any] = {"frames": frames, "fixations": fixations, "num_of_frames": 3, **NM_GEOMETRY}
    kwargs.update(num_of_frames=3, num_of_layers=1, indices=[0, 1])
    assert len(MarmosetMovieDataset(good, nm_root, **kwargs)) == 2 * ((40 - 2) // CHUNK)
    with pytest.raises(DataFormatError, match="lack the key 'train_responses'"):
        MarmosetMovieDataset({"test_responses": np.ones((2, 30))}, nm_root, **kwargs)
    with pytest.raises(DataShapeError, match=r"'train_responses'\] must have 3 dimensions"):
        MarmosetMovieDataset({**good, "train_responses": np.ones((2, 40))}, nm_root, **kwargs)
    nan_train = np.ones((2, 40, 2))
    nan_train[1, 3, 0] = np.nan
    with pytest.raises(NonFiniteDataError, match="train_responses"):
        MarmosetMovieDataset({**good, "train_responses": nan_train}, nm_root, **kwargs)
    with pytest.raises(DataFormatError, match=r"trial indices \[2\]"):
        MarmosetMovieDataset(good, nm_root, **{**kwargs, "indices": [0, 2]})
    assert MarmosetMovieDataset(good, nm_root, **{**kwargs, "excluded_cells": [0]}).n_neurons == 1
    with pytest.raises(DataFormatError, match="only the first 20 fixation lines are the test sequence"):
        MarmosetMovieDataset(good, nm_root, **{**kwargs, "indices": None, "test": True, "test_frames": 20})
    with pytest.raises(DataShapeError, match=r"must be \(N, T_test, R\)"):
        repeats = {**good, "test_responses_by_trial": np.ones((2, 29, 3))}
        MarmosetMovieDataset(repeats, nm_root, **{**kwargs, "indices": None, "test": True})


def test_white_noise_loader_batches_and_values(wn_root: Path) -> None:
    crop = (2, 3, 4, 5)
    loaders = white_noise_loader(
        wn_root, {s: WN_RESPONSE_FILES[s] for s in ("01", "02")}, {"01": crop, "02": crop}, None, None,
        batch_size=3, seed=5, subsample=2, num_of_frames=[5, 3], num_of_layers=2, time_chunk_size=CHUNK,
    )  # fmt: skip
    train: Any = loaders["train"]["01"].dataset
    assert train.frame_shape == (13, 12) and train.n_neurons == SAMPLE.n_neurons  # all cells by default
    batch = next(iter(loaders["train"]["01"]))
    assert batch.inputs.shape == (3, 1, CHUNK + OVERHEAD, 13, 12) and batch.targets.shape == (3, CHUNK, 3)
    trial = int(train.trial_ids[2])
    item = 2 * train.chunks_per_trial + 3
    raw = np.load(wn_root / "non_repeating_stimuli_1" / f"trial_{trial:03d}" / "all_images.npy")
    expected = raw[2:27:2, 4:27:2, 3 * CHUNK : 4 * CHUNK + OVERHEAD].transpose(2, 0, 1)
    np.testing.assert_array_equal(train[item].inputs[0].numpy(), expected)  # stored values, no scaling
    responses = raw_pickle(wn_root, WN_RESPONSE_FILES["01"])["train_responses"]
    start = 3 * CHUNK + OVERHEAD
    np.testing.assert_allclose(train[item].targets.numpy(), responses[:, start : start + CHUNK, trial].T, rtol=1e-6)
    test: Any = loaders["test"]["02"].dataset
    test_raw = np.load(wn_root / "repeating_stimuli_1" / "all_images.npy")
    np.testing.assert_array_equal(test[:].inputs[0].numpy(), test_raw[2:27:2, 4:27:2].transpose(2, 0, 1))
    assert test.test_responses_by_trial.shape == (SAMPLE.test_repeats, SAMPLE.n_neurons, SAMPLE.test_frames)
    # Explicit folders and extra_frame: targets start one frame later.
    shifted: Any = white_noise_loader(
        wn_root, {"01": WN_RESPONSE_FILES["01"]}, crop, {"01": "non_repeating_stimuli_1"},
        {"01": "repeating_stimuli_1"}, num_of_frames=[5, 3], num_of_layers=2, time_chunk_size=CHUNK, extra_frame=1,
        get_locations=False,
    )["train"]["01"].dataset  # fmt: skip
    trial = int(shifted.trial_ids[0])
    np.testing.assert_allclose(shifted[0].targets.numpy(), responses[:, OVERHEAD + 1 : OVERHEAD + 1 + CHUNK, trial].T)


def test_white_noise_cache_and_bad_input(wn_root: Path, tmp_path: Path) -> None:
    data = load_responses(wn_root, {"01": WN_RESPONSE_FILES["01"]})["01"]
    folder = wn_root / "non_repeating_stimuli_1"
    dataset = NoiseDataset(data, folder, indices=[0, 1, 2, 3], crop=0, cache_maxsize=2, time_chunk_size=CHUNK,
                           num_of_frames=7)  # fmt: skip
    per_trial = dataset.chunks_per_trial
    for trial in (0, 1, 0, 2):  # trial 1 is the least recently used when trial 2 arrives
        dataset[trial * per_trial]
    assert list(dataset._cache) == [0, 2]
    uncached = NoiseDataset(data, folder, indices=[3], crop=0, use_cache=False, time_chunk_size=CHUNK, num_of_frames=7)
    np.testing.assert_array_equal(uncached[1].inputs.numpy(), dataset[3 * per_trial + 1].inputs.numpy())
    partial = tmp_path / "partial"
    shutil.copytree(folder, partial)
    shutil.rmtree(partial / "trial_004")
    with pytest.raises(DataFileNotFoundError, match=r"trial_004.*all_images\.npy"):
        NoiseDataset(data, partial, indices=[3, 4], crop=0, num_of_frames=7)
    short = tmp_path / "short"
    (short / "trial_000").mkdir(parents=True)
    np.save(short / "trial_000" / "all_images.npy", np.zeros((30, 32, 10)))
    with pytest.raises(DataShapeError, match="at least 70 frames"):
        NoiseDataset(data, short, indices=[0], crop=0, num_of_frames=7)
    with pytest.raises(DataFormatError, match="cannot tell which white-noise stimulus folders"):
        infer_noise_folders(tmp_path, data)


def test_chunked_sampler_keeps_trials_together(wn_root: Path) -> None:
    data = load_responses(wn_root, {"01": WN_RESPONSE_FILES["01"]})["01"]
    dataset = NoiseDataset(data, wn_root / "non_repeating_stimuli_1", indices=[0, 1, 2, 3], crop=0,
                           time_chunk_size=CHUNK, num_of_frames=7)  # fmt: skip
    sampler = ChunkedSampler(dataset, seed=4)
    first, second = list(sampler), list(sampler)
    block = dataset.chunks_per_trial
    assert sorted(first) == list(range(len(dataset))) and first != second
    assert all(len({i // block for i in first[k : k + block]}) == 1 for k in range(0, len(first), block))
    sampler.set_epoch(0)
    assert list(sampler) == first  # reproducible per epoch, global random state untouched
    flat = flatten_collate_fn([dataset[0], dataset[1]])
    assert flat.inputs.shape == (2, 1, CHUNK + 6, 30, 32) and flat.targets.shape == (2 * CHUNK, SAMPLE.n_neurons)


def test_loaders_check_the_data_io_containers(nm_root: Path) -> None:
    files = {s: NM_RESPONSE_FILES[s] for s in ("01", "02")}
    responses = response_splits_from_pickles(nm_root, files, sessions=["01"])
    assert list(responses) == ["01"]
    with pytest.raises(DataFormatError, match=r"data_io.responses has sessions \['01'\]"):
        nm_loaders(nm_root, neuron_data_dictionary=responses)
    responses = response_splits_from_pickles(nm_root, files, excluded_cells={"02": [0]})
    with pytest.raises(DataShapeError, match=r"session '02': data_io.responses has 2 neurons but the dataloader"):
        nm_loaders(nm_root, neuron_data_dictionary=responses)
    movies = build_movies_from_responses(nm_root, files, channels=1, height=80, width=90, stim_id_prefix="sridhar")
    with pytest.raises(DataShapeError, match=r"data_io.stimulus_height=40 data_io.stimulus_width=45"):
        nm_loaders(nm_root, movies_dictionary=movies)
    matching = build_movies_from_responses(nm_root, files, channels=1, height=40, width=45)
    nm_loaders(nm_root, movies_dictionary=matching, neuron_data_dictionary=response_splits_from_pickles(nm_root, files))


def test_receptive_field_location_in_the_loaders_frame(nm_root: Path, wn_root: Path) -> None:
    def peak_variance_pixel(root: Path, retina: str, cell: int, flip: bool, crop: tuple[int, int, int, int]) -> list:
        sta = np.load(root / "stas" / f"cell_data_{retina}_WN_stas_cell_{cell}.npy")
        sta = sta[:, ::-1] if flip else sta
        top, bottom, left, right = crop
        variance = sta[:, top : sta.shape[1] - bottom, left : sta.shape[2] - right].var(axis=0)
        return [int(v) for v in np.unravel_index(np.argmax(variance), variance.shape)]

    nm = receptive_field_location(nm_root, "02", 2, flip_sta=True, big_crops={"01": (0, 0, 0, 0), "02": NM_CROP})
    assert nm == peak_variance_pixel(nm_root, "02", 2, True, NM_CROP)
    wn = receptive_field_location(wn_root, "01", 1, flip_sta=False, crop=20)  # no big_crops: the plain crop
    assert wn == peak_variance_pixel(wn_root, "01", 1, False, (20, 20, 20, 20))
    assert all(isinstance(v, int) for v in nm + wn)  # plain ints: a model's hyper-parameters stay serialisable
    with pytest.raises(DataFileNotFoundError, match="cell 7"):
        receptive_field_location(wn_root, "01", 7, flip_sta=False)
