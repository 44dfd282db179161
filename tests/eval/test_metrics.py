"""Metrics and oracles against values computed by hand or with explicit loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openretina.errors import DataShapeError
from openretina.eval.metrics import (
    MSE_numpy,
    correlation_numpy,
    crop_responses,
    explainable_vs_total_var,
    feve,
    poisson_loss_numpy,
)
from openretina.eval.oracles import global_mean_oracle, oracle_corr_jackknife

# Two frames, two repeats, one neuron: frame 0 -> trials (1, 3), frame 1 -> trials (5, 7).
REPEATED = np.array([[[1.0], [3.0]], [[5.0], [7.0]]])


def pearson_loop(a: list[float], b: list[float]) -> float:
    n = len(a)
    mean_a, mean_b = sum(a) / n, sum(b) / n
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    var_a = sum((x - mean_a) ** 2 for x in a)
    var_b = sum((y - mean_b) ** 2 for y in b)
    return cov / math.sqrt(var_a * var_b)


def test_correlation_hand_values() -> None:
    assert correlation_numpy(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0, abs=1e-7)
    a, b = [1.0, 2.0, 4.0, 0.5], [2.0, 3.0, 3.5, 1.0]
    assert correlation_numpy(np.array(a), np.array(b)) == pytest.approx(pearson_loop(a, b), abs=1e-7)


def test_correlation_along_axis_zero_per_column() -> None:
    x = np.array([[1.0, 0.0], [2.0, 1.0], [4.0, 0.0]])
    y = np.array([[1.0, 1.0], [3.0, 0.0], [2.0, 1.0]])
    expected = [pearson_loop(list(x[:, j]), list(y[:, j])) for j in range(2)]
    np.testing.assert_allclose(correlation_numpy(x, y, axis=0), expected, atol=1e-7)


def test_correlation_of_constant_trace_is_zero_not_nan() -> None:
    assert correlation_numpy(np.ones(5), np.arange(5.0)) == 0.0


def test_mse_hand_value() -> None:
    assert MSE_numpy(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])) == pytest.approx(5 / 3)


def test_poisson_loss_hand_value() -> None:
    # mean(1 - 1*log 1, e - 2*log e) = (e - 1) / 2
    value = poisson_loss_numpy(np.array([1.0, 2.0]), np.array([1.0, math.e]))
    assert value == pytest.approx((math.e - 1) / 2, abs=1e-7)


def test_explainable_vs_total_var_hand_values() -> None:
    # total var of (1,3,5,7) with ddof 1 = 20/3; noise = mean(var(1,3), var(5,7)) = 2; explainable = 14/3.
    ratio, explainable = explainable_vs_total_var(REPEATED)
    assert explainable[0] == pytest.approx(14 / 3)
    assert ratio[0] == pytest.approx(0.7)


def test_feve_perfect_and_partial_predictions() -> None:
    assert feve(REPEATED, np.array([[2.0], [6.0]]))[0] == pytest.approx(1.0)
    # constant prediction 4: mse = 5, noise = 2, explainable = 14/3 -> 1 - 3 / (14/3) = 5/14
    assert feve(REPEATED, np.array([[4.0], [4.0]]))[0] == pytest.approx(5 / 14)
    # 3-D predictions are used as they are
    assert feve(REPEATED, np.full((2, 2, 1), 4.0))[0] == pytest.approx(5 / 14)


def test_feve_rejects_bad_shapes() -> None:
    with pytest.raises(DataShapeError, match="time, repeats, neurons"):
        feve(REPEATED[:, 0], REPEATED[:, 0])
    with pytest.raises(DataShapeError, match="do not match"):
        feve(REPEATED, np.zeros((3, 1)))


def test_crop_responses_drops_the_lag() -> None:
    responses = np.arange(10.0).reshape(2, 5)
    cropped, lag = crop_responses(responses, np.zeros((3, 2)))
    assert lag == 2
    np.testing.assert_array_equal(cropped, responses[:, 2:])
    with pytest.raises(DataShapeError):
        crop_responses(responses, np.zeros((6, 2)))


def test_jackknife_oracle_against_loop() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(6, 3, 2))
    score, loo = oracle_corr_jackknife(data)
    for neuron in range(2):
        flat, means = [], []
        for t in range(6):
            for r in range(3):
                others = [data[t, k, neuron] for k in range(3) if k != r]
                flat.append(data[t, r, neuron])
                means.append(sum(others) / 2)
                assert loo[t, r, neuron] == pytest.approx(sum(others) / 2)
        assert score[neuron] == pytest.approx(pearson_loop(flat, means), abs=1e-7)


def test_jackknife_cut_frames_and_errors() -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=(8, 3, 1))
    np.testing.assert_allclose(oracle_corr_jackknife(data, cut_first_n_frames=3)[0], oracle_corr_jackknife(data[3:])[0])
    with pytest.raises(DataShapeError, match="at least 2 repeats"):
        oracle_corr_jackknife(data[:, :1])
    with pytest.raises(DataShapeError):
        oracle_corr_jackknife(data[:, 0])


def test_global_mean_oracle_against_loop() -> None:
    responses = np.array([[1.0, 2.0, 0.0], [3.0, 1.0, 1.0], [0.0, 4.0, 2.0], [2.0, 2.0, 5.0]])  # (T, N)
    population_mean = [sum(row) / 3 for row in responses.tolist()]
    expected = [pearson_loop(list(responses[:, n]), population_mean) for n in range(3)]
    np.testing.assert_allclose(global_mean_oracle(responses), expected, atol=1e-7)
    np.testing.assert_allclose(global_mean_oracle(responses[:, None, :]), expected, atol=1e-7)
