"""Figures drawn with Agg and saved: composition, MEI panels, receptive-field grids, tuning, weights."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from openretina.data_io.artificial_stimuli import generate_gratings
from openretina.errors import DataShapeError
from openretina.insilico.tuning_analyses import TuningCurve
from openretina.models import UnifiedCoreReadout
from openretina.modules.layers.convolutions import conv_backend
from openretina.plotting import (
    plot_mds_panels,
    plot_mei,
    plot_receptive_field_grid,
    plot_tuning_curve,
)
from openretina.utils.plotting import (
    legend_without_duplicate_labels,
    plot_stimulus_composition,
    plot_vector_field_resp_iso,
    polar_plot_of_direction_of_motion_responses,
    save_figure,
)

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference_fixture"


def saved(fig, path: Path) -> Path:
    fig.savefig(path)
    assert path.is_file() and path.stat().st_size > 1000
    return path


def grating_stimulus(frames: int) -> torch.Tensor:
    return generate_gratings((2, frames, 18, 16), temporal_frequency=3.0, spatial_frequency=0.1)


@pytest.mark.parametrize("frames", [40, 12])  # the reference raised for 18 frames or fewer
def test_composition_plot_in_the_listing_layout(tmp_path: Path, frames: int) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(7 * 3, 12))
    stimulus = grating_stimulus(frames).requires_grad_(True)
    plot_stimulus_composition(stimulus, axes[0, 0], axes[0, 1], axes[1, 0], highlight_x_list=[(5, 9)])
    saved(fig, tmp_path / "composition.png")
    assert axes[1, 0].get_title() == "Spatial Component (Green/UV)"
    assert axes[0, 0].get_xlabel() == "Time [frames]" and len(axes[0, 0].get_lines()) == 2
    low, high = axes[0, 0].get_ylim()
    assert low == pytest.approx(-high)  # symmetric limits
    # Spatial panel: the two channels side by side.
    assert axes[1, 0].get_images()[0].get_array().shape == (18, 32)


def test_composition_plot_uses_the_frame_rate_for_time_and_frequency() -> None:
    _fig, axes = plt.subplots(1, 3)
    plot_stimulus_composition(grating_stimulus(60), axes[0], axes[1], axes[2], frame_rate=30.0)
    times = axes[0].get_lines()[0].get_xdata()
    assert times[-1] == pytest.approx(59 / 30) and axes[0].get_xlabel() == "Time [s]"
    freqs, magnitude = axes[1].get_lines()[0].get_data()
    assert freqs[np.argmax(magnitude)] == pytest.approx(3.0)  # the grating's temporal frequency
    assert "Hz" in axes[1].get_title()
    with pytest.raises(DataShapeError, match="stimulus\\[0\\]"):
        plot_stimulus_composition(grating_stimulus(20)[None], axes[0], None, axes[2])


class TinyModel(torch.nn.Module):
    data_info: ClassVar[dict[str, object]] = {"input_shape": (2, 18, 16), "frame_rate_hz": 30.0}

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        return x[:, :, 4:].mean(dim=(1, 3, 4))[..., None].repeat(1, 1, 3)  # (batch, time - 4, 3)


def test_mei_and_mds_figures(tmp_path: Path) -> None:
    fig = plot_mei(grating_stimulus(40), TinyModel(), neuron=2, title="MEI of neuron 2")
    saved(fig, tmp_path / "mei.png")
    axes = fig.axes
    assert len(axes) == 4 and axes[3].get_title() == "Response of neuron 2"
    x, _ = axes[3].get_lines()[0].get_data()
    assert len(x) == 36 and x[0] == pytest.approx(4 / 30)
    empty = plot_mei(grating_stimulus(40).numpy())
    assert not empty.axes[3].axison
    mds = plot_mds_panels(torch.stack([grating_stimulus(30), -grating_stimulus(30)]), ["type A", "type B"])
    saved(mds, tmp_path / "mds.png")
    assert len(mds.axes) == 4 and mds.axes[2].get_title() == "type B: spatial"


def test_receptive_field_grid(tmp_path: Path) -> None:
    maps = np.random.default_rng(0).normal(size=(7, 8, 6))
    fig = plot_receptive_field_grid(maps, ncols=3)
    saved(fig, tmp_path / "rfs.png")
    assert len(fig.axes) == 9 and sum(bool(ax.get_images()) for ax in fig.axes) == 7
    image = fig.axes[1].get_images()[0]
    assert image.get_clim() == pytest.approx((-np.abs(maps[1]).max(), np.abs(maps[1]).max()))
    subset = plot_receptive_field_grid(maps, neuron_ids=[4, 6], shared_scale=True)
    assert [ax.get_title() for ax in subset.axes] == ["Neuron 4", "Neuron 6"]
    with pytest.raises(DataShapeError, match="neurons, height, width"):
        plot_receptive_field_grid(maps[0])


def test_polar_plot_ticks_match_the_directions(tmp_path: Path) -> None:
    fig = polar_plot_of_direction_of_motion_responses([90, 0, 270, 180], [2.0, 1.0, 0.5, 0.0])
    saved(fig, tmp_path / "polar.png")
    (ax,) = fig.axes
    np.testing.assert_allclose(ax.get_xticks(), np.deg2rad([0, 90, 180, 270]))
    assert [label.get_text() for label in ax.get_xticklabels()] == ["0°", "90°", "180°", "270°"]
    _, radii = ax.get_lines()[0].get_data()
    np.testing.assert_allclose(radii, [1.0, 2.0, 0.0, 0.5, 1.0])  # sorted by direction and closed


def test_tuning_curve_and_vector_field(tmp_path: Path) -> None:
    curve = TuningCurve("contrast", np.array([0.25, 0.5, 1.0]), np.arange(6.0).reshape(3, 2))
    fig = plot_tuning_curve(curve)
    saved(fig, tmp_path / "curve.png")
    assert len(fig.axes[0].get_lines()) == 2 and fig.axes[0].get_xlabel() == "contrast"
    colour = TuningCurve("colour", np.array([[1.0, 0.0], [0.0, 1.0]]), np.ones((2, 1)))
    assert [t.get_text() for t in plot_tuning_curve(colour).axes[0].get_xticklabels()] == ["(1, 0)", "(0, 1)"]
    x = np.linspace(-1, 1, 5)
    y = np.linspace(-1, 1, 4)  # a different grid on the second axis is honoured
    response = np.add.outer(2 * x, y)
    gradient = np.stack([np.full_like(response, 2.0), np.ones_like(response)])
    field = plot_vector_field_resp_iso(x, y, gradient, response, normalize_response=True)
    saved(field, tmp_path / "field.png")
    ax = field.axes[0]
    assert len(ax.patches) == 3 * 2  # one arrow per interior grid point
    assert ax.get_xlabel() == "Green contrast" and ax.get_ylim()[1] == pytest.approx(1.0)
    with pytest.raises(DataShapeError):
        plot_vector_field_resp_iso(x, x, gradient, response)


def test_save_figure_and_legend(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    for _ in range(2):
        ax.plot([0, 1], label="a")
    ax.plot([1, 0], label="b")
    legend_without_duplicate_labels(ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    path = save_figure("plot.png", tmp_path / "figs", fig)
    assert path == tmp_path / "figs" / f"{datetime.date.today().isoformat()}_plot.png" and path.is_file()
    assert not plt.fignum_exists(fig.number)


def test_paper_weight_listing_on_the_fixture_model(tmp_path: Path) -> None:
    hparams = json.loads((FIXTURE_DIR / "trained_final.hparams.json").read_text())
    hparams.pop("__dropped__")
    model = UnifiedCoreReadout(**hparams)
    model.load_state_dict(load_file(str(FIXTURE_DIR / "trained_final.safetensors")), strict=True)
    conv_layer_figure = model.core.plot_weight_visualization(layer=0, in_channel=1, out_channel=0)
    session_key = model.readout.readout_keys()[0]
    readout_figure = model.readout[session_key].plot_weight_for_neuron(5)
    saved(conv_layer_figure, tmp_path / "conv.png")
    saved(readout_figure, tmp_path / "readout.png")
    assert len(conv_layer_figure.axes) >= 3 and len(readout_figure.axes) >= 2
    # MEI listing's plotting half: a grad-tracking (1, C, 40, H, W) stimulus, first sample, positional axes.
    stimulus = torch.randn(model.stimulus_shape(time_steps=40), requires_grad=True)
    _fig, axes = plt.subplots(2, 2, figsize=(7 * 3, 12))
    plot_stimulus_composition(stimulus[0], axes[0, 0], axes[0, 1], axes[1, 0])
    with conv_backend("dense"):  # no gradients: the plain path, no per-shape timing
        mei_fig = plot_mei(stimulus[0], model, neuron=10, data_key=session_key)
    assert len(mei_fig.axes[3].get_lines()[0].get_xdata()) == 10  # 40 frames - 30 cut frames
