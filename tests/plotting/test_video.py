"""Stimulus colours, global normalisation and the GIF/mp4 writers (GIF read back with Pillow)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from openretina.errors import DataShapeError, NonFiniteDataError
from openretina.plotting import stimulus_to_rgb
from openretina.utils.plotting import (
    play_stimulus,
    prepare_video_for_display,
    save_stimulus_to_gif,
    save_stimulus_to_mp4_video,
    stitch_videos,
    undo_video_normalization,
)


def two_channel_movie() -> torch.Tensor:
    """(2, 3, 4, 5): frame 0 green only, frame 1 UV only, frame 2 both at the minimum."""
    movie = torch.zeros(2, 3, 4, 5)
    movie[0, 0] = 1.0
    movie[1, 1] = 1.0
    return movie


def test_two_channels_map_green_to_green_and_uv_to_purple() -> None:
    rgb = stimulus_to_rgb(two_channel_movie())
    assert rgb.shape == (3, 4, 5, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0, 0]) == (0, 255, 0)
    assert tuple(rgb[1, 2, 3]) == (255, 0, 255)
    assert tuple(rgb[2, 1, 1]) == (0, 0, 0)


def test_one_and_three_channels_are_grey_and_rgb_in_order() -> None:
    grey = stimulus_to_rgb(np.array([0.0, 0.5, 1.0]).reshape(1, 3, 1, 1))
    assert [tuple(grey[t, 0, 0]) for t in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    rgb = torch.zeros(3, 1, 1, 3)
    rgb[0, 0, 0, 0] = rgb[1, 0, 0, 1] = rgb[2, 0, 0, 2] = 1.0
    frames = stimulus_to_rgb(rgb)
    assert [tuple(frames[0, 0, x]) for x in range(3)] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def test_normalisation_is_global_not_per_frame_and_input_is_untouched() -> None:
    movie = torch.tensor([0.0, 1.0, 2.0, 4.0]).reshape(1, 4, 1, 1).repeat(1, 1, 2, 2)
    before = movie.clone()
    rgb = stimulus_to_rgb(movie)
    # A per-frame normalisation would make every constant frame the same; the global one keeps 0, 1/4, 1/2, 1.
    np.testing.assert_array_equal(rgb[:, 0, 0, 0], [0, 64, 128, 255])
    torch.testing.assert_close(movie, before)
    fixed = stimulus_to_rgb(movie, value_range=(-4.0, 4.0))
    np.testing.assert_array_equal(fixed[:, 0, 0, 0], [128, 159, 191, 255])
    np.testing.assert_array_equal(stimulus_to_rgb(torch.full((2, 2, 2, 2), 3.0)), 128)  # constant: mid grey


def test_bad_stimuli_are_explained() -> None:
    with pytest.raises(DataShapeError, match="1, 2 or 3 channels"):
        stimulus_to_rgb(torch.zeros(4, 2, 2, 2))
    with pytest.raises(DataShapeError, match="channels, time, height, width"):
        stimulus_to_rgb(torch.zeros(1, 2, 2, 2, 2))
    with pytest.raises(NonFiniteDataError):
        stimulus_to_rgb(torch.full((1, 2, 2, 2), float("nan")))


def read_gif(path: Path) -> tuple[list[np.ndarray], list[int]]:
    frames, durations = [], []
    with Image.open(path) as image:
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")))
            durations.append(image.info["duration"])
    return frames, durations


def test_gif_frames_have_the_stimulus_colours_and_frame_rate(tmp_path: Path) -> None:
    movie = two_channel_movie().requires_grad_(True)  # as after optimize_stimulus: grad-tracking input is fine
    path = save_stimulus_to_gif(movie, tmp_path / "mei.gif", fps=20)
    frames, durations = read_gif(path)
    assert len(frames) == 3 and frames[0].shape == (4, 5, 3)
    assert tuple(frames[0][0, 0]) == (0, 255, 0)
    assert tuple(frames[1][2, 3]) == (255, 0, 255)
    assert tuple(frames[2][3, 4]) == (0, 0, 0)
    assert durations == [50, 50, 50]


def test_gif_frame_rate_comes_from_the_model_and_start_frame_skips(tmp_path: Path) -> None:
    model = torch.nn.Linear(1, 1)
    model.data_info = {"frame_rate_hz": 10.0}  # type: ignore[assignment]
    frames, durations = read_gif(
        save_stimulus_to_gif(two_channel_movie(), tmp_path / "a.gif", model=model, start_at_frame=1)
    )
    assert len(frames) == 2 and durations == [100, 100]
    assert tuple(frames[0][0, 0]) == (255, 0, 255)
    with pytest.raises(ValueError, match=r"\.gif"):
        save_stimulus_to_gif(two_channel_movie(), tmp_path / "a.mp4")


class FakeWriter:
    def __init__(self, path: Path, **options: object) -> None:
        self.path, self.options, self.frames, self.closed = path, options, [], False

    def append_data(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())

    def close(self) -> None:
        self.closed = True


def test_mp4_goes_through_imageio_with_even_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writers: list[FakeWriter] = []

    def get_writer(path: Path, **options: object) -> FakeWriter:
        writers.append(FakeWriter(path, **options))
        return writers[-1]

    fake = types.ModuleType("imageio")
    fake_v2 = types.ModuleType("imageio.v2")
    fake_v2.get_writer = get_writer  # type: ignore[attr-defined]
    fake.v2 = fake_v2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imageio", fake)
    monkeypatch.setitem(sys.modules, "imageio.v2", fake_v2)
    save_stimulus_to_mp4_video(two_channel_movie(), tmp_path / "mei.mp4", fps=12.5)
    (writer,) = writers
    assert writer.closed and writer.options["fps"] == 12.5
    assert len(writer.frames) == 3 and writer.frames[0].shape == (4, 6, 3)  # width 5 padded to 6
    assert tuple(writer.frames[1][0, 5]) == (255, 0, 255)  # the padded column repeats the last one
    assert tuple(writer.frames[0][0, 0]) == (0, 255, 0)


def test_mp4_without_the_video_extra_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "imageio", None)
    monkeypatch.setitem(sys.modules, "imageio.v2", None)
    with pytest.raises(ImportError, match=r"openretina\[video\]"):
        save_stimulus_to_mp4_video(two_channel_movie(), tmp_path / "mei.mp4")
    with pytest.raises(ValueError, match=r"\.mp4"):
        save_stimulus_to_mp4_video(two_channel_movie(), tmp_path / "mei.avi")


def test_undo_video_normalization_is_x_times_std_plus_mean() -> None:
    video = torch.tensor([[1.0], [-1.0]]).reshape(2, 1, 1, 1)
    values = {"channel_0_mean": 10.0, "channel_0_std": 2.0, "channel_1_mean": 30.0, "channel_1_std": 5.0}
    restored = undo_video_normalization(video, values)
    assert restored.dtype == torch.int32 and restored.flatten().tolist() == [12, 25]
    assert video.flatten().tolist() == [1.0, -1.0]  # not modified
    default = undo_video_normalization(torch.zeros(2, 1, 1, 1))
    assert default.flatten().tolist() == [37, 36]  # Höfling 18x16 channel means


def test_prepare_video_for_display_and_stitch() -> None:
    movie = np.linspace(0, 1, 2 * 3 * 5 * 7).reshape(2, 3, 5, 7).astype(np.float32)
    frames = prepare_video_for_display(movie, layout="CTHW")
    assert frames.shape == (3, 4, 6, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, stimulus_to_rgb(movie)[:, :4, :6])
    small = np.zeros((3, 2, 2, 3), dtype=np.uint8)
    stitched = stitch_videos(frames, small, separator_width=2, resize_method="nearest")
    assert stitched.shape == (3, 4, 6 + 2 + 4, 3)
    assert (stitched[:, :, 6:8] == 255).all()
    with pytest.raises(DataShapeError, match="differ in length"):
        stitch_videos(frames, small[:2])


def test_play_stimulus_returns_an_animation_and_closes_its_figure() -> None:
    import matplotlib.pyplot as plt

    html = play_stimulus(two_channel_movie(), fps=10)
    text = html if isinstance(html, str) else html.data
    assert "Animation" in text and text.count("data:image/png;base64") == 3
    assert plt.get_fignums() == []
