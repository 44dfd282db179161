"""The demo (the README's main job) runs end to end and writes a consistent report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from openretina.cli.openretina_main import main


def test_quick_demo_writes_report_and_figure(tmp_path: Path) -> None:
    assert main(["demo", "--quick", "--output-dir", str(tmp_path)]) == 0

    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) == {"dataset", "data_vs_truth", "training", "test", "mei_vs_truth", "runtime"}
    assert -1.0 <= report["mei_vs_truth"]["mei_rf_correlation_median"] <= 1.0
    assert report["dataset"]["sessions"] == 2
    assert report["dataset"]["cells"] == 24
    test = report["test"]
    for key in ("test_correlation_mean", "oracle_correlation_mean", "correlation_to_noise_free_truth_mean"):
        assert math.isfinite(test[key]) and -1.0 <= test[key] <= 1.0, key
    # Even two short epochs learn something: predictions correlate positively with the noise-free truth.
    assert test["correlation_to_noise_free_truth_mean"] > 0.05
    assert report["training"]["epochs"] == 2
    assert (tmp_path / "report.md").read_text().startswith("# openretina demo report")
    assert (tmp_path / "receptive_fields.png").stat().st_size > 1000

    # The trained model is saved in the pickle-free format and reloads to the same predictions.
    from openretina.hub import load_pretrained

    model = load_pretrained(tmp_path / "model")
    assert not list((tmp_path / "model").glob("*.ckpt"))
    stimulus = torch.randn(model.stimulus_shape(time_steps=40, num_batches=2))
    assert model(stimulus, data_key="session_0").shape == (2, 40 - model.number_of_cut_frames(), 12)
