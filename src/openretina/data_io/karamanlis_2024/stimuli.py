"""Fixation movies of the Karamanlis et al. 2024 dataset, rendered from images and per-frame eye translations.

Each frame shows one image of an ensemble on a black 600 x 800 screen, translated so that image pixel
``(x, y)`` of the frame's fixation lies at the screen centre. Differences from the reference (its weak points):
frames are rendered with one slice assignment each and resized in bounded chunks (the reference looped over
every pixel range of every frame in Python and held each full-resolution block in memory), and the screen
column/row just left of/above an image stays black (the reference's port showed the image's last column/row
there by wrapping a ``-1`` index). Rendered movies are cached next to the ``.mat`` file under the reference's name,
``…<stim_type>_data_extracted_stimuli_<H>_<W>.npz`` (keys ``train_data``, ``test_data``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from openretina.data_io.base import MoviesTrainTestSplit, error_context
from openretina.data_io.karamanlis_2024._sessions import check_stim_type, session_file, session_folders
from openretina.data_io.karamanlis_2024.constants import DOWNSAMPLED_SIZE, SCREEN_SIZE, Specie, StimType
from openretina.data_io.maheswaranathan_2023._session_file import open_session_file, read_array, zscore_in_place
from openretina.errors import DataFormatError, DataShapeError

# Frames rendered at full screen resolution at once before resizing (~120 MB of float32 at 600 x 800).
_RENDER_CHUNK_FRAMES = 64


def _paint(screen: np.ndarray, image: np.ndarray, tr_x: int, tr_y: int) -> None:
    """Copy ``image`` ``(Y, X)`` onto the zeroed ``screen`` ``(rows, cols)`` so that image pixel ``(tr_y, tr_x)``
    lands on screen pixel ``(rows // 2, cols // 2)``; parts outside the screen are cut off."""
    rows, cols = screen.shape
    shift_y, shift_x = tr_y - rows // 2, tr_x - cols // 2  # image index = screen index + shift
    r0, r1 = max(0, -shift_y), min(rows, image.shape[0] - shift_y)
    c0, c1 = max(0, -shift_x), min(cols, image.shape[1] - shift_x)
    if r0 < r1 and c0 < c1:
        screen[r0:r1, c0:c1] = image[r0 + shift_y : r1 + shift_y, c0 + shift_x : c1 + shift_x]


def return_fix_movie(screensize: tuple[int, int], im_ensemble: np.ndarray, list_fixations: np.ndarray) -> np.ndarray:
    """Render a fixation movie at screen resolution.

    Input: ``screensize`` ``(rows, cols)``; ``im_ensemble`` ``(Y, X, n_images)``; ``list_fixations`` ``(3, T)``
    rows = 1-based image index, x translation, y translation. Output: float32 ``(rows, cols, T)``.
    """
    images = np.asarray(im_ensemble)
    fixations = np.asarray(list_fixations).astype(np.int64)
    movie = np.zeros((*screensize, fixations.shape[1]), dtype=np.float32)
    frame = np.zeros(screensize, dtype=np.float32)
    for t, (index, tr_x, tr_y) in enumerate(fixations.T.tolist()):
        frame[:] = 0
        _paint(frame, images[:, :, index - 1], tr_x, tr_y)
        movie[:, :, t] = frame
    return movie


def _resized_chunks(images: np.ndarray, fixations: np.ndarray, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Render frames ``(T, 3)`` of ``images`` ``(n, Y, X)`` in chunks and resize each to ``size`` with bilinear,
    antialiased interpolation (as torchvision's ``Resize`` on tensors). Yields float32 ``(T_chunk, *size)``."""
    for start in range(0, len(fixations), _RENDER_CHUNK_FRAMES):
        part = fixations[start : start + _RENDER_CHUNK_FRAMES]
        screens = np.zeros((len(part), *SCREEN_SIZE), dtype=np.float32)
        for screen, (index, tr_x, tr_y) in zip(screens, part.tolist()):
            _paint(screen, images[index - 1], tr_x, tr_y)
        resized = F.interpolate(
            torch.from_numpy(screens)[None], size=size, mode="bilinear", antialias=True, align_corners=False
        )
        yield resized[0].numpy()


def _read_fixations(file: h5py.File, key: str, layout: str, n_images: int) -> np.ndarray:
    fixations = read_array(file, key, layout)
    if fixations.shape[-1] != 3:
        raise DataShapeError(
            f"session file {file.filename!r}: key {key!r} must end in 3 columns (image index, x, y), got shape "
            f"{fixations.shape}."
        )
    fixations = fixations.astype(np.int64)
    indices = fixations[..., 0]
    if indices.size and (indices.min() < 1 or indices.max() > n_images):
        raise DataFormatError(
            f"session file {file.filename!r}: key {key!r} refers to images {indices.min()}..{indices.max()} but the "
            f"ensemble has images 1..{n_images}."
        )
    return fixations


def _render_from_mat(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(train (1, T_train, *size), test (1, T_frozen, *size))`` rendered from a session's ``.mat`` file."""
    with open_session_file(path) as file:
        # Stored (n, X, Y) by MATLAB; rendering needs (n, Y, X).
        running_images = read_array(file, "runningImages", "(images, x, y)").transpose(0, 2, 1)
        frozen_images = read_array(file, "frozenImages", "(images, x, y)").transpose(0, 2, 1)
        running = _read_fixations(file, "runningfixations", "(blocks, time, 3)", len(running_images))
        frozen = _read_fixations(file, "frozenfixations", "(time, 3)", len(frozen_images))
    train = np.concatenate(list(_resized_chunks(running_images, running.reshape(-1, 3), size)))
    test = np.concatenate(list(_resized_chunks(frozen_images, frozen, size)))
    return train[None], test[None]


def load_stimuli_for_session(
    session_path: str | Path,
    stim_type: StimType = "fixationmovie",
    downsampled_size: tuple[int, int] = DOWNSAMPLED_SIZE,
    normalize_stimuli: bool = True,
) -> MoviesTrainTestSplit | None:
    """Movies of one session folder, or None (with a warning) if it has no ``…<stim_type>_data.mat``.

    Output: ``MoviesTrainTestSplit(train (1, T_train, *downsampled_size), test (1, T_frozen, ...))``, float32,
    training blocks back to back; z-scored with the training movie's statistics if ``normalize_stimuli``.
    A cached ``.npz`` next to the ``.mat`` file is used when present, else the movie is rendered and cached.
    """
    check_stim_type(stim_type)
    folder = Path(session_path)
    size = (int(downsampled_size[0]), int(downsampled_size[1]))
    cache_suffix = f"{stim_type}_data_extracted_stimuli_{size[0]}_{size[1]}.npz"
    cached = sorted(folder.glob(f"*{cache_suffix}"))
    if cached:
        with np.load(cached[0]) as content:
            missing = [key for key in ("train_data", "test_data") if key not in content]
            if missing:
                raise DataFormatError(f"cached movie {str(cached[0])!r} lacks keys {missing}; delete it to re-render.")
            train, test = content["train_data"].astype(np.float32), content["test_data"].astype(np.float32)
    else:
        mat = session_file(folder, f"{stim_type}_data.mat")
        if mat is None:
            return None
        train, test = _render_from_mat(mat, size)
        try:
            cache = mat.with_name(f"{mat.stem}_extracted_stimuli_{size[0]}_{size[1]}.npz")
            np.savez_compressed(cache, train_data=train, test_data=test)
        except OSError as error:
            warnings.warn(f"could not cache the rendered movie next to {str(mat)!r} ({error}).", stacklevel=2)
    mean, std = zscore_in_place(train, test) if normalize_stimuli else (None, None)
    return MoviesTrainTestSplit(train=train, test=test, stim_id=stim_type, norm_mean=mean, norm_std=std)


def load_all_stimuli(
    base_data_path: str | Path,
    stim_type: StimType = "fixationmovie",
    normalize_stimuli: bool = True,
    specie: Specie = "mouse",
    downsampled_size: tuple[int, int] = DOWNSAMPLED_SIZE,
) -> dict[str, MoviesTrainTestSplit]:
    """Movies of every ``specie`` session (see :func:`load_stimuli_for_session`); ``base_data_path`` is the
    ``sessions`` folder (or its URL). Sessions without the stimulus file are skipped with a warning."""
    movies: dict[str, MoviesTrainTestSplit] = {}
    for session, folder in session_folders(base_data_path, specie).items():
        with error_context(f"session {session!r}"):
            loaded = load_stimuli_for_session(folder, stim_type, downsampled_size, normalize_stimuli)
        if loaded is not None:
            movies[session] = loaded
    return movies
