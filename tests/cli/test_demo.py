"""The demo (the README's main job) runs end to end and writes a consistent report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from openretina.cli.demo import acceptance_checks
from openretina.cli.openretina_main import main


def test_quick_demo_writes_report_and_figure(tmp_path: Path) -> None:
    assert main(["demo", "--quick", "--output-dir", str(tmp_path)]) == 0

    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) == {
        "dataset",
        "data_vs_truth",
        "training",
        "test",
        "ln_baseline",
        "acceptance",
        "mei_vs_truth",
        "runtime",
    }
    assert -1.0 <= report["mei_vs_truth"]["mei_rf_correlation_median"] <= 1.0
    assert report["dataset"]["sessions"] == 2
    assert report["dataset"]["cells"] == 24
    test = report["test"]
    for key in ("test_correlation_mean", "oracle_correlation_mean", "correlation_to_noise_free_truth_mean"):
        assert math.isfinite(test[key]) and -1.0 <= test[key] <= 1.0, key
    # Even two short epochs learn something: predictions correlate positively with the noise-free truth.
    assert test["correlation_to_noise_free_truth_mean"] > 0.05
    assert report["training"]["epochs"] == report["training"]["ln_baseline_epochs"] == 2
    # The LN baseline is scored like the core model, and the acceptance section compares the two.
    baseline = report["ln_baseline"]
    assert set(baseline) == set(test)
    assert baseline["oracle_correlation_mean"] == test["oracle_correlation_mean"]  # same data, same oracle
    acceptance = report["acceptance"]
    margin = test["test_correlation_mean"] - baseline["test_correlation_mean"]
    assert acceptance["margin_over_ln_baseline"] == pytest.approx(margin)
    assert acceptance["beats_ln_baseline_by_0.05"] == (margin >= 0.05)
    assert "| quantity | core-readout | LN baseline |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "report.md").read_text().startswith("# openretina demo report")
    assert (tmp_path / "receptive_fields.png").stat().st_size > 1000

    # The trained model is saved in the pickle-free format and reloads to the same predictions.
    from openretina.hub import load_pretrained

    model = load_pretrained(tmp_path / "model")
    assert not list((tmp_path / "model").glob("*.ckpt"))
    stimulus = torch.randn(model.stimulus_shape(time_steps=40, num_batches=2))
    assert model(stimulus, data_key="session_0").shape == (2, 40 - model.number_of_cut_frames(), 12)


def core_metrics(fraction_of_oracle: float, correlation: float, rf_median: float | None) -> dict[str, float | None]:
    return {
        "test_correlation_mean": correlation,
        "fraction_of_oracle": fraction_of_oracle,
        "reliable_cells_fraction": 0.75,
        "rf_correlation_median_reliable": rf_median,
    }


def test_acceptance_checks_apply_each_threshold() -> None:
    passing = acceptance_checks(core_metrics(0.95, 0.70, 0.85), {"test_correlation_mean": 0.60})
    assert passing["all_met"] and passing["margin_over_ln_baseline"] == pytest.approx(0.10)
    assert passing["reliable_cells_fraction"] == 0.75
    # Each criterion fails on its own, just below its threshold.
    assert not acceptance_checks(core_metrics(0.89, 0.70, 0.85), {"test_correlation_mean": 0.60})["all_met"]
    assert not acceptance_checks(core_metrics(0.95, 0.70, 0.79), {"test_correlation_mean": 0.60})["all_met"]
    below_margin = acceptance_checks(core_metrics(0.95, 0.70, 0.85), {"test_correlation_mean": 0.66})
    assert not below_margin["beats_ln_baseline_by_0.05"] and not below_margin["all_met"]
    # No reliable cell: the RF criterion cannot hold. No baseline: the comparison is left out.
    assert not acceptance_checks(core_metrics(0.95, 0.70, None), None)["rf_correlation_at_least_0.8"]
    without_baseline = acceptance_checks(core_metrics(0.95, 0.70, 0.85), None)
    assert without_baseline["all_met"] and "margin_over_ln_baseline" not in without_baseline


# A smaller retina than the demo's (half the training movie) and a shorter run (25 epochs, batches of 16): about
# 1 min on 2 cores (1.9 CPU minutes). Measured (seed 0): core 0.893 = 1.15 x oracle, LN 0.702, RF median 0.849
# over 98 % of the cells (seed 1: 0.872, 1.13 x, LN 0.622, RF 0.839).
SMALLER_RUN = [
    "--max-epochs",
    "25",
    "--max-minutes",
    "120",  # bounded by epochs, not by the clock, so the result does not depend on the machine's load
    "data_io.retina.num_natural_clips=40",
    "data_io.retina.num_white_noise_clips=10",
    "dataloader.batch_size=16",
]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_demo_meets_the_acceptance_criteria_on_a_smaller_retina(tmp_path: Path) -> None:
    """Core-readout >= 0.9 x jackknife oracle and >= LN baseline + 0.05; RF median >= 0.8 over reliable cells."""
    assert main(["demo", "--output-dir", str(tmp_path), *SMALLER_RUN]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    core, baseline, acceptance = report["test"], report["ln_baseline"], report["acceptance"]
    assert report["training"]["epochs"] == 25 and 0 < report["training"]["ln_baseline_epochs"] <= 25
    summary = f"core {core}, LN baseline {baseline}"
    assert core["test_correlation_mean"] >= 0.9 * core["oracle_correlation_mean"], summary
    assert core["test_correlation_mean"] >= baseline["test_correlation_mean"] + 0.05, summary
    assert core["reliable_cells_fraction"] >= 0.5, summary  # the RF criterion speaks for most cells
    assert core["rf_correlation_median_reliable"] >= 0.8, summary
    assert acceptance["all_met"], acceptance
