"""Per-neuron evaluation table and EvaluationSummary."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from openretina.data_io.base import DatasetStatistics
from openretina.errors import DataShapeError
from openretina.eval.chunked import AlignedPrediction
from openretina.eval.evaluation import (
    EvaluationSummary,
    evaluate_session,
    filter_by_var_ratio,
    neuron_metrics,
    write_table_csv,
)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture
def trials() -> np.ndarray:
    """(T=12, R=3, N=2) responses: a shared signal plus trial noise."""
    rng = np.random.default_rng(3)
    signal = rng.normal(size=(12, 1, 2)) * 2
    return signal + rng.normal(size=(12, 3, 2)) + 10.0  # positive, like firing rates


def test_neuron_metrics_against_independent_computations(trials: np.ndarray) -> None:
    average = trials.mean(axis=1)
    prediction = average + np.random.default_rng(4).normal(size=average.shape) * 0.5 + 3.0
    metrics = neuron_metrics(prediction, average, trials)
    for n in range(2):
        assert metrics["corr_to_average"][n] == pytest.approx(corr(average[:, n], prediction[:, n]), abs=1e-6)
        assert metrics["mse_to_average"][n] == pytest.approx(np.mean((average[:, n] - prediction[:, n]) ** 2))
        poisson = np.mean(prediction[:, n] - average[:, n] * np.log(prediction[:, n] + 1e-8))
        assert metrics["poisson_loss_to_average"][n] == pytest.approx(poisson)
        for r in range(3):
            assert metrics[f"corr_{r}"][n] == pytest.approx(corr(trials[:, r, n], prediction[:, n]), abs=1e-6)
            assert metrics[f"mse_{r}"][n] == pytest.approx(np.mean((trials[:, r, n] - prediction[:, n]) ** 2))
        total = np.var(trials[:, :, n], ddof=1)
        noise = np.mean(np.var(trials[:, :, n], axis=1, ddof=1))
        assert metrics["var_ratio"][n] == pytest.approx((total - noise) / total, rel=1e-6)
    assert ((metrics["feve"] >= 0) & (metrics["feve"] <= 1)).all()
    assert ((metrics["jackknife"] > -1) & (metrics["jackknife"] < 1)).all()


def test_single_trial_data_gives_nan_oracles(trials: np.ndarray) -> None:
    average = trials.mean(axis=1)
    metrics = neuron_metrics(average, average, None)
    assert np.isnan(metrics["feve"]).all() and np.isnan(metrics["var_ratio"]).all()
    np.testing.assert_allclose(metrics["corr_0"], 1.0, atol=1e-6)
    with pytest.raises(DataShapeError):
        neuron_metrics(average[:5], average, None)


def test_evaluate_session_scores_only_predicted_frames(trials: np.ndarray) -> None:
    frames = np.arange(4, 12)
    average = trials.mean(axis=1)  # (T, N)
    by_trial = trials.transpose(1, 2, 0)  # container layout (R, N, T)
    aligned = AlignedPrediction(predictions=average[frames] * 2.0, frames=frames, lags=(4,))
    rows = evaluate_session(
        aligned,
        average,
        by_trial,
        session="s1",
        data_split="test",
        session_kwargs={"cell_types": np.array([7, 9]), "rig": "A"},
        add_responses=True,
    )
    assert [row["neuron_relative_idx"] for row in rows] == [0, 1]
    assert rows[0]["session"] == "s1" and rows[0]["data_split"] == "test"
    assert rows[0]["corr_to_average"] == pytest.approx(1.0, abs=1e-6)  # a scaled copy of the aligned frames
    assert rows[1]["cell_types"] == 9 and rows[1]["rig"] == "A"
    assert rows[1]["model_response"] == pytest.approx((average[frames, 1] * 2.0).tolist())
    assert rows[0]["corr_2"] == pytest.approx(corr(trials[frames, 2, 0], average[frames, 0]), abs=1e-6)


def test_filter_by_var_ratio() -> None:
    rows = [{"var_ratio": 0.1}, {"var_ratio": 0.5}]
    assert filter_by_var_ratio(rows, 0.15) == ([{"var_ratio": 0.5}], True)
    unfiltered = [{"var_ratio": math.nan}, {"var_ratio": math.nan}]
    assert filter_by_var_ratio(unfiltered, 0.15) == (unfiltered, False)


def make_summary(rows: list[dict[str, float]]) -> EvaluationSummary:
    return EvaluationSummary.from_dataframe(
        rows,
        model_path="m.ckpt",
        model_tag=None,
        exp_name="exp",
        species="mouse",
        data_split="test",
        temporal_lag=4,
        n_trials_per_session={"a": 2, "b": 4},
        n_neurons_total=3,
        var_ratio_cutoff=0.15,
        filtering_applied=True,
        dataset_stats=DatasetStatistics(10, 2, 12, {"t1": 5}, 9, 1, {"t1": 4}, 2),
    )


def test_summary_aggregates(tmp_path: Path) -> None:
    rows = [
        {"corr_to_average": 0.5, "mse_to_average": 1.0, "feve": 0.2, "var_ratio": 0.4,
         "poisson_loss_to_average": 2.0, "jackknife": 0.6, "corr_0": 0.2, "corr_1": 0.4, "mse_0": 1.0, "mse_1": 3.0},
        {"corr_to_average": 0.7, "mse_to_average": 3.0, "feve": math.nan, "var_ratio": 0.6,
         "poisson_loss_to_average": 4.0, "jackknife": 0.8, "corr_0": 0.4, "corr_1": 0.6, "mse_0": 2.0, "mse_1": 2.0},
    ]  # fmt: skip
    summary = make_summary(rows)
    assert summary.corr_to_avg_mean == pytest.approx(0.6)
    assert summary.mse_to_avg_mean == pytest.approx(2.0)
    assert summary.feve_mean == pytest.approx(0.2)  # nanmean
    assert summary.fev_mean == summary.explainable_var_ratio_mean == pytest.approx(0.5)
    assert summary.poisson_loss_mean == pytest.approx(3.0) and summary.jackknife_mean == pytest.approx(0.7)
    # per-trial means over neurons: corr (0.3, 0.5, nan, nan) -> mean 0.4, std 0.1
    assert summary.corr_by_trial_mean == pytest.approx(0.4) and summary.corr_by_trial_std == pytest.approx(0.1)
    assert summary.mse_by_trial_mean == pytest.approx(2.0) and summary.mse_by_trial_std == pytest.approx(0.5)
    assert (summary.n_test_repeats_min, summary.n_test_repeats_max, summary.n_test_repeats_avg) == (2, 4, 3.0)
    assert summary.n_neurons_filtered == 2 and summary.n_sessions == 2
    flat = summary.to_flat_dict()
    assert flat["unique_test_frames_t1"] == 5 and flat["unique_test_transitions_t1"] == 4
    summary.save_json(tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text())["corr_to_avg_mean"] == pytest.approx(0.6)
    report = summary.report()
    assert "0.600" in report and all(len(line) <= 80 for line in report.splitlines())


def test_write_table_csv_union_of_columns(tmp_path: Path) -> None:
    write_table_csv([{"a": 1, "b": 2}, {"a": 3, "c": "x"}], tmp_path / "t.csv")
    with open(tmp_path / "t.csv") as file:
        rows = list(csv.DictReader(file))
    assert rows == [{"a": "1", "b": "2", "c": ""}, {"a": "3", "b": "", "c": "x"}]
