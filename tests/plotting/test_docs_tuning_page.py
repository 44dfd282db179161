"""The code on docs/tuning_and_plots.md runs, with the fixture's Höfling model standing in for the download."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

import openretina.models
from openretina.models import UnifiedCoreReadout
from openretina.modules.layers.convolutions import conv_backend

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "tuning_and_plots.md"
FIXTURE_DIR = ROOT / "tests" / "data" / "reference_fixture"


def fixture_model(name: str, device: str = "cpu") -> UnifiedCoreReadout:
    assert name == "hoefling_2024_base_low_res"
    hparams = json.loads((FIXTURE_DIR / "trained_final.hparams.json").read_text())
    hparams.pop("__dropped__")
    model = UnifiedCoreReadout(**hparams)
    model.load_state_dict(load_file(str(FIXTURE_DIR / "trained_final.safetensors")), strict=True)
    return model


def test_page_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openretina.models, "load_core_readout_from_remote", fixture_model, raising=False)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 7
    namespace: dict[str, object] = {}
    with warnings.catch_warnings(), conv_backend("dense"):
        warnings.simplefilter("ignore", UserWarning)
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    assert np.asarray(namespace["receptive_fields"]).shape == (96, 64, 64)
    assert np.asarray(namespace["results"]).shape == (20, 96)
    assert np.asarray(namespace["dsi"]).shape == (40,)
    assert np.asarray(namespace["resp"]).shape == (9, 9)
    assert (Path(str(namespace["folder"])) / "mei.gif").stat().st_size > 0
