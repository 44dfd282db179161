"""Karamanlis et al. 2024 loaders on tiny MATLAB v7.3 (HDF5) files in the published layout."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from openretina.data_io.base_dataloader import multiple_movies_dataloaders
from openretina.data_io.karamanlis_2024.constants import SCREEN_SIZE
from openretina.data_io.karamanlis_2024.responses import load_all_responses
from openretina.data_io.karamanlis_2024.stimuli import load_all_stimuli, return_fix_movie
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError, NonFiniteDataError

BLOCKS, T_BLOCK, T_FROZEN, REPEATS, N = 2, 30, 20, 3, 4
N_IMAGES, X, Y = 3, 500, 400  # images smaller than the 800 x 600 screen, so borders stay black
SIZE = (6, 8)
FILE = "20220301_fixationmovie_data.mat"


def _brute_force_frame(image_yx: np.ndarray, tr_x: int, tr_y: int, screen: tuple[int, int]) -> np.ndarray:
    """Independent per-pixel rendering: screen pixel (r, c) shows image pixel (r + tr_y - rows//2, c + tr_x - cols//2).

    Slow (a Python loop over every pixel) but obviously right."""
    rows, cols = screen
    frame = np.zeros(screen, dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            i, j = r + tr_y - rows // 2, c + tr_x - cols // 2
            if 0 <= i < image_yx.shape[0] and 0 <= j < image_yx.shape[1]:
                frame[r, c] = image_yx[i, j]
    return frame


def test_return_fix_movie_geometry(rng: np.random.Generator) -> None:
    ensemble = rng.random((3, 4, 2)).astype(np.float32) + 1  # (Y, X, n), no zeros
    fixations = np.array([[1, 2, 2, 1], [1, 0, 10, -3], [0, 1, -2, 5]])  # (index, x, y) per frame, incl. off-screen
    movie = return_fix_movie((6, 8), ensemble, fixations)
    assert movie.shape == (6, 8, 4) and movie.dtype == np.float32
    for t, (index, tr_x, tr_y) in enumerate(fixations.T):
        np.testing.assert_array_equal(movie[:, :, t], _brute_force_frame(ensemble[:, :, index - 1], tr_x, tr_y, (6, 8)))
    # The column just left of the image is black (the reference wrapped around to the image's last column).
    assert movie[3, 2, 0] == 0 and movie[3, 3, 0] == ensemble[0, 0, 0]


def _session_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def fixations(*shape: int, n_images: int) -> np.ndarray:
        out = np.empty((*shape, 3))
        out[..., 0] = rng.integers(1, n_images + 1, shape)
        out[..., 1] = rng.integers(-50, X + 50, shape)
        out[..., 2] = rng.integers(-50, Y + 50, shape)
        return out

    return {
        "runningbin": rng.poisson(1.0, (BLOCKS, T_BLOCK, N)).astype(np.float64),
        "frozenbin": rng.poisson(1.0, (REPEATS, T_FROZEN, N)).astype(np.float64),
        "runningImages": rng.random((N_IMAGES, X, Y)),  # MATLAB order (n, x, y)
        "frozenImages": rng.random((2, X, Y)),
        "runningfixations": fixations(BLOCKS, T_BLOCK, n_images=N_IMAGES),
        "frozenfixations": fixations(T_FROZEN, n_images=2),
    }


@pytest.fixture
def sessions(tmp_path: Path, rng: np.random.Generator, write_h5) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """``mouse_a/`` and ``marmoset_c/`` folders and ``mouse_b.zip`` (holding ``mouse_b/``)."""
    contents = {name: _session_arrays(rng) for name in ("mouse_a", "mouse_b", "marmoset_c")}
    root = tmp_path / "sessions"
    for name, arrays in contents.items():
        write_h5(root / name / FILE, arrays)
    archive = root / "mouse_b.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(root / "mouse_b" / FILE, f"mouse_b/{FILE}")
    (root / "mouse_b" / FILE).unlink()
    (root / "mouse_b").rmdir()
    return root, contents


def test_responses_layout_and_normalisation(sessions) -> None:
    root, contents = sessions
    responses = load_all_responses(root, specie="mouse", fr_normalization=2.0)
    assert list(responses) == ["mouse_a", "mouse_b"]  # the zip is extracted and keyed without ".zip"
    for session, split in responses.items():
        running, frozen = contents[session]["runningbin"], contents[session]["frozenbin"]
        assert split.train.shape == (N, BLOCKS * T_BLOCK) and split.train.dtype == np.float32
        np.testing.assert_allclose(split.train[:, T_BLOCK + 5], running[1, 5] / 2)  # blocks back to back
        by_trial = split.get_test_by_trial()
        assert by_trial is not None and by_trial.shape == (REPEATS, N, T_FROZEN)
        np.testing.assert_allclose(by_trial[2, 1], frozen[2, :, 1] / 2)
        np.testing.assert_allclose(split.test_response, frozen.mean(axis=0).T / 2, rtol=1e-6)
    assert list(load_all_responses(root, specie="marmoset")) == ["marmoset_c"]


def test_stimuli_rendered_resized_cached_and_zscored(sessions) -> None:
    root, contents = sessions
    movies = load_all_stimuli(root, specie="mouse", normalize_stimuli=False, downsampled_size=SIZE)
    assert list(movies) == ["mouse_a", "mouse_b"]
    arrays = contents["mouse_a"]
    movie = movies["mouse_a"]
    assert movie.train.shape == (1, BLOCKS * T_BLOCK, *SIZE) and movie.test_movie.shape == (1, T_FROZEN, *SIZE)
    for frames, images, key, t in ((movie.train, arrays["runningImages"], "runningfixations", T_BLOCK + 3),
                                   (movie.test_movie, arrays["frozenImages"], "frozenfixations", 7)):  # fmt: skip
        index, tr_x, tr_y = arrays[key].reshape(-1, 3)[t].astype(int)
        full = _brute_force_frame(images[index - 1].T, tr_x, tr_y, SCREEN_SIZE)
        expected = F.interpolate(torch.from_numpy(full)[None, None], size=SIZE, mode="bilinear", antialias=True)
        np.testing.assert_allclose(frames[0, t], expected[0, 0].numpy(), rtol=1e-5, atol=1e-6)
    cache = root / "mouse_a" / FILE.replace(".mat", f"_extracted_stimuli_{SIZE[0]}_{SIZE[1]}.npz")
    with np.load(cache) as cached:
        np.testing.assert_array_equal(cached["train_data"], movie.train)
    (root / "mouse_a" / FILE).unlink()  # the cache alone now provides the movie
    normalised = load_all_stimuli(root, downsampled_size=SIZE)["mouse_a"]
    assert normalised.norm_mean == pytest.approx(float(movie.train.mean()), rel=1e-5)
    assert normalised.norm_std == pytest.approx(float(movie.train.std(ddof=1)), rel=1e-4)
    np.testing.assert_allclose(normalised.train.mean(), 0, atol=1e-5)


def test_generic_dataloaders_accept_both_dictionaries(sessions) -> None:
    root, _ = sessions
    loaders = multiple_movies_dataloaders(
        load_all_responses(root), load_all_stimuli(root, downsampled_size=SIZE),
        train_chunk_size=10, batch_size=2, clip_length=15, num_val_clips=1,
    )  # fmt: skip
    inputs, targets = next(iter(loaders["train"]["mouse_b"]))
    assert inputs.shape == (2, 1, 10, *SIZE) and targets.shape == (2, 10, N)


# --- bad input ---------------------------------------------------------------------------------------------------


def test_no_sessions_and_missing_files(tmp_path: Path, write_h5, rng) -> None:
    with pytest.raises(DataFileNotFoundError, match="does not exist"):
        load_all_responses(tmp_path / "nowhere")
    (tmp_path / "mouse_empty").mkdir()
    write_h5(tmp_path / "mouse_full" / FILE, _session_arrays(rng))
    with pytest.warns(UserWarning, match="'mouse_empty': no file ending with"):
        assert list(load_all_responses(tmp_path)) == ["mouse_full"]
    with pytest.raises(DataFileNotFoundError, match="'marmoset' in its name"):
        load_all_stimuli(tmp_path, specie="marmoset")


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda a: a.pop("frozenbin"), DataFormatError, r"fixationmovie_data\.mat.*'frozenbin' is missing"),
        (lambda a: a.__setitem__("runningbin", a["runningbin"][0]), DataShapeError, r"'runningbin' must be 3-D"),
        (lambda a: a["runningbin"].__setitem__((1, 2, 3), np.nan), NonFiniteDataError, r"key 'runningbin'"),
    ],
)
def test_bad_response_files(tmp_path: Path, write_h5, rng, change, error, message) -> None:
    arrays = _session_arrays(rng)
    change(arrays)
    write_h5(tmp_path / "mouse_1" / FILE, arrays)
    with pytest.raises(error, match=message):
        load_all_responses(tmp_path)


def test_bad_fixations(tmp_path: Path, write_h5, rng) -> None:
    arrays = _session_arrays(rng)
    arrays["frozenfixations"][4, 0] = 3  # the frozen ensemble has 2 images
    write_h5(tmp_path / "mouse_1" / FILE, arrays)
    with pytest.raises(DataFormatError, match=r"'frozenfixations' refers to images 1\.\.3"):
        load_all_stimuli(tmp_path, downsampled_size=SIZE)
    with pytest.raises(DataFormatError, match="stim_type"):
        load_all_stimuli(tmp_path, stim_type="movie")  # type: ignore[arg-type]
