"""`openretina visualize` on a tiny saved model: every MEI, weight plot and the index page are written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib
import pytest
import torch
from tests.models.conftest import TINY_SIMPLE_CORE

from openretina.cli import visualize
from openretina.cli.visualize import ChannelPerStimulusObjective, load_model, main
from openretina.errors import InsufficientFramesError
from openretina.hub import save_pretrained
from openretina.insilico.stimulus_optimization import SliceMeanReducer, random_stimulus
from openretina.models import UnifiedCoreReadout

matplotlib.use("Agg")

NEURONS = {"session_a": 2, "session_b": 1}
LAYER_CHANNELS = (1, 2)


def tiny_model() -> UnifiedCoreReadout:
    """3 colour channels, 10 x 8 pixels; core layers of 1 and 2 channels (temporal kernels 5 and 3: lag 6).

    The core's kernels are drawn at unit scale (their initial values are tiny), so every unit responds.
    """
    torch.manual_seed(0)
    readout = {
        "_target_": "openretina.modules.readout.multi_readout.MultiGaussianMaskReadout",
        "scale": True,
        "bias": True,
        "gaussian_mean_scale": 1.0,
        "gaussian_var_scale": 1.0,
        "positive": True,
    }
    data_info = {
        "input_shape": [3, 10, 8],
        "stimulus_rate_hz": 30,
        "n_neurons_dict": NEURONS,
        "mean_activity_dict": {session: [0.5] * count for session, count in NEURONS.items()},
    }
    model = UnifiedCoreReadout(
        in_shape=(3, 20, 10, 8),
        n_neurons_dict=NEURONS,
        core=TINY_SIMPLE_CORE,  # its regularisation weights play no part in visualisation
        readout=readout,
        hidden_channels=LAYER_CHANNELS,
        data_info=data_info,
    )
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.core.parameters():
            if parameter.dim() > 1:
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_pretrained(tiny_model(), tmp_path_factory.mktemp("tiny") / "model")


def test_visualize_writes_every_mei_weight_plot_and_the_index(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[tuple[Any, torch.Tensor, Any]] = []
    original = visualize._Run.optimise

    def spy(self: Any, objective: Any, count: int) -> torch.Tensor:
        best = original(self, objective, count)
        runs.append((objective, best, self))
        return best

    monkeypatch.setattr(visualize._Run, "optimise", spy)
    out = tmp_path / "out"
    argv = ["--model-path", str(model_dir), "--save-folder", str(out), "--device", "cpu"]
    argv += ["--time-steps-stimulus", "16", "--iterations", "10", "--image-file-format", "png", "--dpi", "20"]
    assert main(argv) == 0

    # One batched optimisation per session and per core layer; each MEI drives its own unit more than its start.
    assert [len(best) for _, best, _ in runs] == [*NEURONS.values(), *LAYER_CHANNELS]
    for objective, best, run in runs:
        start = run.postprocessor.process(random_stimulus(run.shape, seeds=range(len(best))))
        with torch.no_grad():
            assert (objective.per_stimulus(best) > objective.per_stimulus(start)).all()
        # Default --stimulus-rms 0.2 over 3 x 16 x 10 x 8 values: norm at most 0.2 * sqrt(3840).
        assert torch.linalg.vector_norm(best.flatten(1), dim=1).max() <= 0.2 * 3840**0.5 + 1e-4

    expected = [f"output_neurons/{session}/{neuron}" for session, count in NEURONS.items() for neuron in range(count)]
    expected += [f"core_features_layer{layer}/{c}" for layer, count in enumerate(LAYER_CHANNELS) for c in range(count)]
    for stem in expected:
        assert (out / f"{stem}.png").stat().st_size > 0, stem
        assert (out / f"{stem}.gif").stat().st_size > 0, stem
    weights = sorted(p.relative_to(out).as_posix() for p in out.glob("weights_*/**/*.png"))
    # One plot per (in, out) channel pair of each core layer, one per readout neuron.
    assert sum(p.startswith("weights_core/weights_layer_0/") for p in weights) == 3 * LAYER_CHANNELS[0]
    assert sum(p.startswith("weights_core/weights_layer_1/") for p in weights) == LAYER_CHANNELS[0] * LAYER_CHANNELS[1]
    for session, count in NEURONS.items():
        assert sum(p.startswith(f"weights_readout/{session}/") for p in weights) == count

    index = (out / "index.html").read_text()
    linked = set(re.findall(r'<img src="([^"]+)"', index))
    assert linked == {f"{stem}.png" for stem in expected} | set(weights)
    assert all((out / link).is_file() for link in linked)
    assert index.count('">video</a>') == len(expected)
    assert "<h2>Core channels: core_features_layer1</h2>" in index
    assert f"<h1>Model visualisation: {model_dir}</h1>" in index


def test_channel_objective_picks_each_stimulus_own_channel() -> None:
    model = tiny_model().eval()
    reducer = SliceMeanReducer(axis=0, start=-2, length=2)
    batched = ChannelPerStimulusObjective(model, "core_features_layer1", [1, 0], "session_a", reducer)
    single = [ChannelPerStimulusObjective(model, "core_features_layer1", [c], "session_a", reducer) for c in (1, 0)]
    stimuli = torch.randn(2, 3, 12, 10, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = torch.stack([objective.per_stimulus(x[None])[0] for objective, x in zip(single, stimuli)])
        torch.testing.assert_close(batched.per_stimulus(stimuli), expected)
        # Independent check of channel 1 at the centre: 10 x 8 pixels -> 8 x 6 after layer 0 (3 x 3, no padding),
        # kept by layer 1 (padding 1), so the centre unit is row 4, column 3.
        features = model.core(stimuli)
        assert features.shape[-2:] == (8, 6)
        torch.testing.assert_close(expected[0], features[0, 1, -2:, 4, 3].mean())
        assert not torch.allclose(expected[0], features[0, 0, -2:, 4, 3].mean())


def test_too_short_stimulus_fails_before_any_work(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InsufficientFramesError, match="pass at least 7"):
        visualize.visualize_model_neurons(str(model_dir), tmp_path / "out", "cpu", time_steps_stimulus=6)
    assert not (tmp_path / "out" / "index.html").exists()


def test_registered_bundled_model_loads_by_name() -> None:
    model = load_model("synthetic_retina_core_readout", "cpu")
    assert model.readout_keys() == ["session_0", "session_1"]
    assert visualize._frame_rate(model) == 30.0
    with pytest.raises(ValueError, match="model path or name"):
        load_model(None, "cpu")


def test_visualize_is_a_subcommand_of_the_console_script(capsys: pytest.CaptureFixture[str]) -> None:
    from openretina.cli import visualize_model_neurons
    from openretina.cli.openretina_main import main as openretina_main

    with pytest.raises(SystemExit) as exit_info:
        openretina_main(["visualize", "--help"])
    assert exit_info.value.code == 0
    assert "--model-path" in capsys.readouterr().out
    assert visualize_model_neurons.visualize_model_neurons is visualize.visualize_model_neurons  # reference path
