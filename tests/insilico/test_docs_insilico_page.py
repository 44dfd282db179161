"""The code on docs/insilico.md runs on the fixture's Höfling model, including the published snippet."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import openretina.models
from openretina.errors import InsufficientFramesError
from openretina.insilico.stimulus_optimization import IncreaseObjective
from openretina.models import UnifiedCoreReadout
from openretina.modules.layers.convolutions import conv_backend

DOC = Path(__file__).resolve().parents[2] / "docs" / "insilico.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture(autouse=True)
def local_model(monkeypatch: pytest.MonkeyPatch, hoefling_model: UnifiedCoreReadout) -> Iterator[None]:
    """``load_core_readout_from_remote`` serves the fixture model (no network); one fixed convolution path."""
    monkeypatch.setattr(
        openretina.models, "load_core_readout_from_remote", lambda name, device: hoefling_model, raising=False
    )
    with conv_backend("spatial_first"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*concatenated.*", category=UserWarning)
        yield


def test_page_has_the_published_snippet_with_enough_frames() -> None:
    snippet = python_blocks()[0]
    assert (
        "IncreaseObjective(\n    model=model,\n    reducer=MeanReducer(neuron_dim=1, indices=neuron_idx)\n)" in snippet
    )
    assert "model.stimulus_shape(time_steps=50, num_batches=1)" in snippet


@pytest.mark.slow
def test_published_snippet_with_50_frames_drives_the_neuron_more(hoefling_model: UnifiedCoreReadout) -> None:
    namespace: dict[str, object] = {}
    torch.manual_seed(0)
    exec(compile(python_blocks()[0], str(DOC), "exec"), namespace)
    torch.manual_seed(0)  # the snippet's first random draw is its initial stimulus
    initial = torch.randn(hoefling_model.stimulus_shape(time_steps=50))
    optimised = namespace["stimulus"]
    assert isinstance(optimised, torch.Tensor) and optimised.shape == (1, 2, 50, 18, 16)
    assert optimised.min() >= 0.0 and optimised.max() <= 1.0
    objective = IncreaseObjective(hoefling_model, [5])
    hoefling_model.eval()
    try:
        with torch.no_grad():
            before, start, after = (objective(x).item() for x in (initial, initial.clamp(0, 1), optimised.detach()))
    finally:
        hoefling_model.train()
    assert after > before
    assert after > start + 0.1  # the constrained starting point, where the optimisation begins


def test_published_snippet_with_30_frames_fails_at_once() -> None:
    snippet = python_blocks()[0].replace("time_steps=50", "time_steps=30")
    namespace: dict[str, object] = {}
    torch.manual_seed(0)
    with pytest.raises(InsufficientFramesError, match=r"at least 31 time steps.*has 30 frames"):
        exec(compile(snippet, str(DOC), "exec"), namespace)
    torch.manual_seed(0)
    expected = torch.randn(1, 2, 30, 18, 16).clamp(0.0, 1.0)  # clipped once before the first step, never stepped
    stimulus = namespace["stimulus"]
    assert isinstance(stimulus, torch.Tensor)
    torch.testing.assert_close(stimulus.detach(), expected)


def test_other_examples_run(hoefling_model: UnifiedCoreReadout) -> None:
    namespace: dict[str, object] = {}
    for block in python_blocks()[1:]:
        exec(compile(block, str(DOC), "exec"), namespace)
    result, meis, mds_result = (namespace[name] for name in ("result", "meis", "mds_result"))
    assert result.objective_history[-1, 0] > result.objective_history[0, 0]  # type: ignore[attr-defined]
    assert meis.stimulus.shape == (4, 2, 50, 18, 16)  # type: ignore[attr-defined]
    assert (meis.objective_history[-1] > meis.objective_history[0]).all()  # type: ignore[attr-defined]
    assert mds_result.objective_history[-1, 0] > mds_result.objective_history[0, 0]  # type: ignore[attr-defined]
    assert hoefling_model.training and all(p.grad is None for p in hoefling_model.parameters())
