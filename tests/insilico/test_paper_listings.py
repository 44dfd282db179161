"""The reference paper's listings (spec reference-insilico.md §5.2) run against a local mirror of the hub.

``hoefling_2024_base_low_res`` is served by a local HTTP mirror holding the project's copy of the reference
checkpoint fixture, and each listing in ``listings/`` runs as a script (``runpy``) in a temporary working
directory, as the reference's ``test_all_listings.py`` ran them. Unlike the reference, the results are checked:
against the fixture's reference outputs, the model's weights and independent forward passes.
"""

from __future__ import annotations

import importlib.util
import runpy
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from safetensors.torch import load_file

import openretina.utils
from openretina.insilico.stimulus_optimization import ResponseWindowWarning
from openretina.models import load_core_readout_from_remote
from openretina.models.core_readout import BaseCoreReadout
from openretina.plotting.video import VIDEO_EXTRA_HINT

LISTINGS = Path(__file__).resolve().with_name("listings")
local_hub = runpy.run_path(str(LISTINGS / "local_hub.py"))
FIXTURE_SESSIONS: dict[str, int] = local_hub["FIXTURE_SESSIONS"]
MEI_SESSION = "session_2_synthetic_20240102"  # the listing's data_key, changed to a session of the fixture
HAS_VIDEO_EXTRA = all(importlib.util.find_spec(name) is not None for name in ("imageio", "imageio_ffmpeg"))
TOLERANCE = 1e-5


def run_listing(name: str) -> dict[str, Any]:
    """Run ``listings/<name>.py`` as a script in the current directory; its globals."""
    return runpy.run_path(str(LISTINGS / f"{name}.py"), run_name="__main__")


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The hub mirror, and the listing's working directory is an empty temporary folder (it writes files)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with local_hub["serve_fixture_as"](tmp_path) as server:
        yield server
    plt.close("all")


def test_load_and_forward_pass_listing_reproduces_the_reference_outputs(mirror: Any) -> None:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="concatenat"):
        namespace = run_listing("listing_load_and_forward_pass")
    model, responses = namespace["model"], namespace["responses"]
    assert responses.shape == (1, 50 - 30, sum(FIXTURE_SESSIONS.values()))
    # The listing's random stimulus (it calls model.forward, which no hook sees): the same draws again, with the
    # model now loaded from the cache.
    torch.manual_seed(0)
    load_core_readout_from_remote(local_hub["MODEL_NAME"], "cpu")
    stimulus = torch.rand(model.stimulus_shape(time_steps=50))
    assert mirror.requests == [local_hub["hub_request"]()]  # downloaded once, then served from the cache
    with torch.no_grad():
        # No data_key: every session's neurons, in sorted session order.
        per_session = [model(stimulus, data_key=session) for session in sorted(FIXTURE_SESSIONS)]
        torch.testing.assert_close(responses, torch.cat(per_session, dim=-1))
        # The model served under the published name is the reference package's fixture model, reproduced.
        reference = load_file(str(local_hub["FIXTURE_IO"]))
        for session in FIXTURE_SESSIONS:
            output = model(reference["input"], data_key=session)
            assert (output - reference[f"trained_best__{session}"]).abs().max().item() < TOLERANCE


def _neuron_response(model: Any, stimulus: torch.Tensor, session: str, neuron: int, frames: slice) -> float:
    """Mean response of one neuron over some output frames, by a plain forward pass of the eval-mode model."""
    with torch.no_grad():
        return model(stimulus, data_key=session)[0, frames, neuron].mean().item()


@pytest.fixture
def mei_run(mirror: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The MEI listing's globals plus what it fed the model (``inputs``) and its mp4 calls (``mp4_calls``).

    Without the optional video extra, ``save_stimulus_to_mp4_video`` raises an ImportError naming the extra;
    the wrapper records that error and lets the listing go on to the composition plot.
    """
    real_writer = openretina.utils.save_stimulus_to_mp4_video
    calls: list[dict[str, Any]] = []

    def recording_writer(stimulus: Any, filepath: Any, *args: Any, **kwargs: Any) -> Any:
        call: dict[str, Any] = {"stimulus": stimulus.detach().clone(), "filepath": filepath}
        calls.append(call)
        try:
            return real_writer(stimulus, filepath, *args, **kwargs)
        except ImportError as error:
            call["error"] = error
            return None

    monkeypatch.setattr(openretina.utils, "save_stimulus_to_mp4_video", recording_writer)
    real_cut_frames = BaseCoreReadout.number_of_cut_frames
    lag_queries: list[int] = []

    def counting_cut_frames(model: BaseCoreReadout) -> int:
        lag_queries.append(real_cut_frames(model))
        return lag_queries[-1]

    monkeypatch.setattr(BaseCoreReadout, "number_of_cut_frames", counting_cut_frames)
    torch.manual_seed(0)
    # 40 frames leave 10 output frames, so the listing's window [10, 20) falls back to [0, 10), with a warning.
    with (
        local_hub["recorded_model_inputs"]() as inputs,
        pytest.warns(ResponseWindowWarning, match=r"\[10, 10 \+ 10\) does not fit a response of 10 frames"),
    ):
        namespace = run_listing("listing_mei")
    assert mirror.requests == [local_hub["hub_request"]()]
    return {**namespace, "inputs": inputs, "mp4_calls": calls, "lag_queries": lag_queries}


def test_mei_listing_optimises_the_neuron_and_plots_the_composition(mei_run: dict[str, Any]) -> None:
    model, stimulus, inputs = mei_run["model"], mei_run["stimulus"], mei_run["inputs"]
    assert stimulus.shape == (1, 2, 40, 18, 16)
    assert len(inputs) == 10  # one forward pass per SGD step, no postprocessor
    assert mei_run["lag_queries"] == [30]  # measured by probe passes (not stored in this checkpoint): only once
    initial = inputs[0]
    torch.testing.assert_close(initial.std(), torch.tensor(0.1), atol=0.01, rtol=0)  # randn * 0.1
    window = slice(0, 10)  # where the out-of-range window fell back to
    before = _neuron_response(model, initial, MEI_SESSION, 10, window)
    after = _neuron_response(model, stimulus.detach(), MEI_SESSION, 10, window)
    assert after > before + 0.1
    # The writer got the optimised stimulus (C, T, H, W), still a tensor tracking gradients (not detached).
    (call,) = mei_run["mp4_calls"]
    assert call["filepath"] == "mei.mp4"
    torch.testing.assert_close(call["stimulus"], stimulus[0].detach())
    assert stimulus.requires_grad
    if not HAS_VIDEO_EXTRA:
        assert str(call["error"]) == VIDEO_EXTRA_HINT  # names the extra to install
    # Composition: one temporal trace and one spectrum per channel, the spatial components side by side.
    axes = mei_run["axes"]
    assert isinstance(mei_run["fig"], Figure)
    assert len(axes[0, 0].get_lines()) == 2 and len(axes[0, 1].get_lines()) == 2
    assert len(axes[1, 0].get_images()) >= 1 and not axes[1, 1].has_data()


@pytest.mark.skipif(not HAS_VIDEO_EXTRA, reason="mp4 writing needs the optional video extra (imageio, imageio-ffmpeg)")
def test_mei_listing_writes_an_mp4(mei_run: dict[str, Any]) -> None:
    (call,) = mei_run["mp4_calls"]
    assert "error" not in call
    data = Path("mei.mp4").read_bytes()
    assert data[4:8] == b"ftyp"  # the ISO base media file box every mp4 starts with


def test_plot_weights_listing_draws_the_checkpoint_weights(mirror: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the listing passes data keys where needed: no warning
        namespace = run_listing("listing_plot_weights")
    assert mirror.requests == [local_hub["hub_request"]()]
    state = namespace["model"].state_dict()
    assert namespace["session_key"] == sorted(FIXTURE_SESSIONS)[0]
    conv_figure, readout_figure = namespace["conv_layer_figure"], namespace["readout_figure"]
    assert isinstance(conv_figure, Figure) and isinstance(readout_figure, Figure)
    # Spatial kernel from input channel 1 to output channel 0 of layer 0 (shown with its centre positive).
    spatial = np.asarray(conv_figure.axes[0].get_images()[0].get_array())
    kernel = state["core.features.layer0.conv.weight_spatial"][0, 1, 0].numpy()
    assert np.allclose(spatial, kernel) or np.allclose(spatial, -kernel)
    # Readout of neuron 5: one bar per core channel, the neuron's feature weights.
    bars = [patch.get_height() for patch in readout_figure.axes[1].patches if isinstance(patch, Rectangle)]
    features = state[f"readout.{namespace['session_key']}.features"][0, :, 0, 5].numpy()
    np.testing.assert_allclose(bars, features, rtol=1e-6)
