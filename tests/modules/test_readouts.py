"""Readouts: outputs against independent computations, state_dict keys, purity of forward, multi-session wrappers."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import correlate2d

from openretina.errors import DataShapeError
from openretina.modules.readout.base import ClonedReadout, Readout
from openretina.modules.readout.factorized import FactorizedReadout, KlindtReadoutWrapper3D
from openretina.modules.readout.factorized_gaussian import GaussianMaskReadout
from openretina.modules.readout.gaussian import FullGaussian2d, PointGaussianReadout
from openretina.modules.readout.linear_nonlinear_poison import LNPReadout
from openretina.modules.readout.multi_readout import (
    MultiFactorizedReadout,
    MultiGaussianMaskReadout,
    MultipleLNPReadout,
    MultiReadoutBase,
    MultiSampledGaussianReadout,
    UnknownSessionError,
)
from openretina.modules.readout.spatial_contrast_model_readout import (
    MultiSpatialContrastReadout,
    SpatialContrastReadout,
)

matplotlib.use("Agg")
pytestmark = pytest.mark.filterwarnings("ignore:.*not initialized with mean activity:UserWarning")

# Sessions and readout key shapes of the reference Höfling low-res fixture (core output (16, 120, 8, 6)).
HOEFLING_SESSIONS = {"session_1_synthetic_20240101": 40, "session_2_synthetic_20240102": 56}
HOEFLING_READOUT_KEYS = {
    "session_1_synthetic_20240101.mask_mean": (40, 2),
    "session_1_synthetic_20240101.mask_log_var": (40,),
    "session_1_synthetic_20240101.features": (1, 16, 1, 40),
    "session_1_synthetic_20240101.scale_param": (40,),
    "session_1_synthetic_20240101.bias": (40,),
    "session_1_synthetic_20240101.grid": (40, 8, 6, 2),
    "session_2_synthetic_20240102.mask_mean": (56, 2),
    "session_2_synthetic_20240102.mask_log_var": (56,),
    "session_2_synthetic_20240102.features": (1, 16, 1, 56),
    "session_2_synthetic_20240102.scale_param": (56,),
    "session_2_synthetic_20240102.bias": (56,),
    "session_2_synthetic_20240102.grid": (56, 8, 6, 2),
}


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(x))


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


# ----------------------------------------------------------------------------------------------- Gaussian mask


def _numpy_gaussian_masks(mask_mean: np.ndarray, log_var: np.ndarray, height: int, width: int, s_m: float, s_v: float):
    longest = max(height, width)
    rows = np.linspace(-height / longest, height / longest, height)
    cols = np.linspace(-width / longest, width / longest, width)
    masks = np.empty((len(log_var), height, width))
    for n in range(len(log_var)):
        variance = np.exp(np.clip(log_var[n] * s_v, -20, 20))
        centre = mask_mean[n] * s_m
        d2 = (rows[:, None] - centre[0]) ** 2 + (cols[None, :] - centre[1]) ** 2
        weight = np.exp(-0.5 * np.minimum(d2 / (variance + 1e-8), 20))
        masks[n] = weight / weight.sum()
    return masks


def test_gaussian_mask_readout_equals_explicit_weighted_sum(rng: np.random.Generator) -> None:
    channels, height, width, neurons = 3, 5, 7, 4
    readout = GaussianMaskReadout(
        (channels, 10, height, width), neurons, gaussian_mean_scale=2.0, gaussian_var_scale=3.0, scale=True
    )
    _randomise(readout)
    x = torch.from_numpy(rng.normal(size=(2, channels, 6, height, width)).astype(np.float32))

    params = {k: v.detach().double().numpy() for k, v in readout.named_parameters()}
    masks = _numpy_gaussian_masks(params["mask_mean"], params["mask_log_var"], height, width, 2.0, 3.0)
    pooled = np.einsum("bctyx,nyx->btcn", x.double().numpy(), masks)
    linear = np.einsum("btcn,cn->btn", pooled, params["features"][0, :, 0, :])
    expected = _softplus(linear * params["scale_param"] + params["bias"])

    output = readout(x)
    assert output.shape == (2, 6, neurons)
    np.testing.assert_allclose(output.detach().double().numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(readout.get_mask().detach().numpy(), masks, rtol=1e-5, atol=1e-7)


def test_gaussian_mask_mean_axis_zero_runs_along_height() -> None:
    readout = GaussianMaskReadout((1, 1, 4, 6), 1)
    with torch.no_grad():
        # Corner (last row, first column) in the readout's coordinates: (+height/m, -width/m) with m = 6.
        readout.mask_mean.copy_(torch.tensor([[4 / 6, -1.0]]))
        readout.mask_log_var.fill_(-6.0)
    mask = readout.get_mask()[0].detach()
    assert divmod(int(mask.argmax()), 6) == (3, 0)
    # The exp(-10) floor: every pixel keeps a little weight, and masks sum to 1.
    assert float(mask.min()) > 0
    assert float(mask.sum()) == pytest.approx(1.0, abs=1e-6)


def test_gaussian_mask_regularizer_matches_formula() -> None:
    readout = GaussianMaskReadout(
        (3, 1, 4, 4), 5, gaussian_mean_scale=2.0, gaussian_var_scale=0.5, mask_l1_reg=0.3, feature_weights_l1_reg=0.7
    )
    _randomise(readout)
    p = {k: v.detach().double().numpy() for k, v in readout.named_parameters()}
    mask_terms = [np.exp(p["mask_log_var"] * 0.5), (p["mask_mean"] * 2.0) ** 2]
    for reduction, aggregate in (("sum", np.sum), ("mean", np.mean)):
        expected = 0.3 * sum(aggregate(t) for t in mask_terms) + 0.7 * aggregate(np.abs(p["features"]))
        assert readout.regularizer(reduction).item() == pytest.approx(expected, rel=1e-5)


def test_gaussian_mask_positive_clamps_functionally_and_apply_constraints_projects() -> None:
    readout = GaussianMaskReadout((2, 1, 3, 3), 3, positive=True, nonlinearity_function=None)
    with torch.no_grad():
        readout.features.copy_(torch.tensor([[-1.0, 2.0, 0.5], [3.0, -0.5, 1.0]]).reshape(1, 2, 1, 3))
    x = torch.ones(1, 2, 1, 3, 3)
    before = readout.features.detach().clone()
    out = readout(x)
    # Masks sum to 1, so a constant input gives Σ_c relu(features) (+ bias 0).
    np.testing.assert_allclose(out[0, 0].detach().numpy(), [3.0, 2.0, 1.5], rtol=1e-6)
    assert torch.equal(readout.features, before)
    readout.apply_constraints()
    assert readout.features.min().item() == 0.0
    assert torch.allclose(readout(x), out)


def test_gaussian_mask_rejects_mismatching_features() -> None:
    readout = GaussianMaskReadout((16, 1, 8, 6), 3)
    with pytest.raises(DataShapeError, match=r"\(batch, 16, time, 8, 6\).*\(2, 8, 5, 8, 6\)"):
        readout(torch.zeros(2, 8, 5, 8, 6))


def test_mean_activity_initialises_bias_without_aliasing() -> None:
    mean_activity = torch.tensor([0.5, 1.5, 2.5])
    readout = GaussianMaskReadout((2, 1, 3, 3), 3, mean_activity=mean_activity)
    assert torch.equal(readout.bias.detach(), mean_activity)
    mean_activity += 1
    assert torch.equal(readout.bias.detach(), torch.tensor([0.5, 1.5, 2.5]))
    with pytest.raises(DataShapeError, match="mean_activity"):
        GaussianMaskReadout((2, 1, 3, 3), 3, mean_activity=torch.zeros(4))


def test_hoefling_multi_gaussian_mask_state_dict_keys() -> None:
    readout = MultiGaussianMaskReadout(
        in_shape=(16, 120, 8, 6),
        n_neurons_dict=HOEFLING_SESSIONS,
        scale=True,
        bias=True,
        gaussian_mean_scale=6.0,
        gaussian_var_scale=4.0,
        positive=True,
        mean_activity_dict={s: torch.ones(n) for s, n in HOEFLING_SESSIONS.items()},
    )
    shapes = {key: tuple(value.shape) for key, value in readout.state_dict().items()}
    assert list(shapes) == list(HOEFLING_READOUT_KEYS)
    assert shapes == HOEFLING_READOUT_KEYS


# -------------------------------------------------------------------------------------------------- factorized


def test_factorized_readout_equals_explicit_einsum(rng: np.random.Generator) -> None:
    channels, height, width, neurons = 3, 4, 5, 6
    readout = FactorizedReadout(
        (channels, 1, height, width),
        neurons,
        0.1,
        0.2,
        0.3,
        mask_size=(height, width),
        readout_bias=True,
        weights_constraint="absnorm",
        mask_constraint="abs",
        init_scales=[(0.0, 1.0), (0.0, 1.0)],
    )
    _randomise(readout)
    x = torch.from_numpy(rng.normal(size=(2, channels, 3, height, width)).astype(np.float32))
    mask = np.abs(readout.mask_weights.detach().double().numpy())
    weights = np.abs(readout.feature_weights.detach().double().numpy())
    weights = weights / np.sqrt((weights**2).sum(axis=0, keepdims=True) + 1e-5)
    pooled = np.einsum("bctp,pn->btcn", x.double().numpy().reshape(2, channels, 3, -1), mask)
    expected = _softplus(np.einsum("btcn,cn->btn", pooled, weights) + readout.bias.detach().double().numpy())
    np.testing.assert_allclose(readout(x).detach().double().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert isinstance(
        KlindtReadoutWrapper3D((channels, 1, 2, 2), 1, 0, 0, 0, 2, init_scales=[(0, 1), (0, 1)]), FactorizedReadout
    )


def test_factorized_init_mask_is_centre_cropped_and_keys_match() -> None:
    init_mask = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    readout = FactorizedReadout(
        (3, 1, 3, 3), 2, 1.0, 1.0, 1.0, mask_size=3, init_mask=init_mask, init_weights=torch.ones(3, 2)
    )
    np.testing.assert_array_equal(
        readout.mask_weights[:, 1].detach().reshape(3, 3).numpy(), init_mask[1, 0, 1:4, 1:4].numpy()
    )
    assert list(readout.state_dict()) == [
        "mask_weights",
        "feature_weights",
        "bias",
        "_input_weights_regularizer_spatial.laplace.filter",
    ]
    with pytest.raises(ValueError, match="init_mask or init_scales"):
        FactorizedReadout((3, 1, 3, 3), 2, 1.0, 1.0, 1.0, mask_size=3)


def test_factorized_regularizer_matches_formula() -> None:
    readout = FactorizedReadout((2, 1, 3, 3), 2, 0.5, 0.25, 2.0, mask_size=3, init_scales=[(0, 1), (0, 1)])
    _randomise(readout)
    mask = readout.mask_weights.detach().double().numpy()
    weights = readout.feature_weights.detach().double().numpy()
    laplace = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]])
    # padding 0 on a 3×3 mask: the Laplacian has one valid position, the centre.
    centre_response = np.array([(laplace * mask[:, n].reshape(3, 3)).sum() for n in range(2)])
    laplace_term = (centre_response**2).sum() / ((mask**2).sum() + 1e-6)
    l1_terms = 0.5 * np.abs(mask).sum(axis=0).mean() + 0.25 * np.abs(weights).sum(axis=0).mean()
    assert readout.regularizer().item() == pytest.approx(l1_terms + 2.0 * laplace_term, rel=1e-5)
    assert readout.regularizer("mean").item() == pytest.approx(l1_terms + 2.0 * laplace_term / 3, rel=1e-5)


# ---------------------------------------------------------------------------------------------- point Gaussian


def test_point_gaussian_reads_the_pixel_at_mu_in_eval(rng: np.random.Generator) -> None:
    channels, height, width = 3, 5, 7
    readout = PointGaussianReadout((channels, 1, height, width), 2, bias=True, gauss_type="full").eval()
    # align_corners=True: x=-1 is the first column, y=+1 the last row. mu[..., 0] is the width (x) axis.
    with torch.no_grad():
        readout._mu.copy_(torch.tensor([[-1.0, 1.0], [1.0 / 3, 0.0]]).reshape(1, 2, 1, 2))
        readout._features.copy_(torch.tensor([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]]).reshape(1, 3, 1, 2))
        readout.bias.copy_(torch.tensor([0.1, -0.2]))
    x = rng.normal(size=(4, channels, height, width)).astype(np.float32)
    output = readout(torch.from_numpy(x)).detach().numpy()
    features = readout._features.detach().numpy()[0, :, 0]
    expected_first = x[:, :, height - 1, 0] @ features[:, 0] + 0.1
    expected_second = x[:, :, 2, 4] @ features[:, 1] - 0.2  # x = 1/3 -> column (1/3 + 1) / 2 * 6 = 4
    np.testing.assert_allclose(output, np.stack([expected_first, expected_second], axis=1), rtol=1e-5, atol=1e-5)


def test_point_gaussian_5d_input_and_sampling_noise() -> None:
    torch.manual_seed(0)
    readout = FullGaussian2d((2, 1, 6, 6), 3, bias=False, gauss_type="isotropic")
    x = torch.randn(2, 2, 4, 6, 6)
    readout.eval()
    frames = x.permute(0, 2, 1, 3, 4).reshape(8, 2, 6, 6)
    expected = readout(frames).reshape(2, 4, 3)
    assert torch.allclose(readout(x), expected)
    readout.train()
    assert not torch.allclose(readout(x), expected)  # locations are sampled in training
    with torch.no_grad():
        readout.sigma.zero_()
    assert torch.allclose(readout(x), expected)


def test_point_gaussian_forward_does_not_clamp_mu_in_place() -> None:
    readout = PointGaussianReadout((2, 1, 4, 4), 2, bias=True)
    with torch.no_grad():
        readout._mu.copy_(torch.tensor([[3.0, -2.0], [0.5, 0.5]]).reshape(1, 2, 1, 2))
    grid = readout.sample_grid(batch_size=5, sample=True)
    assert grid.shape == (5, 2, 1, 2) and grid.abs().max().item() <= 1.0
    readout(torch.randn(3, 2, 4, 4))
    assert readout._mu[0, 0, 0, 0].item() == 3.0
    readout.apply_constraints()
    assert readout._mu[0, 0, 0].tolist() == [1.0, -1.0]


def test_point_gaussian_regularizer_and_validation() -> None:
    readout = PointGaussianReadout((4, 1, 3, 3), 5, bias=True, gamma_readout=0.5)
    with torch.no_grad():
        readout._features.copy_(torch.linspace(-1, 1, 20).reshape(1, 4, 1, 5))
    total = np.abs(np.linspace(-1, 1, 20)).sum()
    assert readout.regularizer().item() == pytest.approx(0.5 * total, rel=1e-5)
    assert readout.regularizer(average=True).item() == pytest.approx(0.5 * total / 20, rel=1e-5)
    with pytest.raises(ValueError, match="init_mu_range"):
        PointGaussianReadout((4, 1, 3, 3), 5, bias=True, init_mu_range=1.5)
    with pytest.raises(DataShapeError, match=r"\(batch·time, 4, height, width\)"):
        readout(torch.zeros(2, 3, 3, 3))


def test_point_gaussian_shared_features_and_grid() -> None:
    shared = {"match_ids": np.array([7, 3, 7, 5]), "shared_features": None}
    readout = PointGaussianReadout(
        (2, 1, 4, 4), 4, bias=False, shared_features=shared, shared_grid={"match_ids": np.array([1, 1, 2, 2])}
    )
    assert readout._features.shape == (1, 2, 1, 3) and readout._mu.shape == (1, 2, 1, 2)
    assert readout.feature_sharing_index.tolist() == [2, 0, 2, 1]
    assert torch.equal(readout.features[..., 0], readout.features[..., 2])
    assert torch.equal(readout.mu[:, 0], readout.mu[:, 1])
    assert set(readout.state_dict()) == {
        "_mu",
        "sigma",
        "_features",
        "scales",
        "grid_sharing_index",
        "feature_sharing_index",
    }


def test_point_gaussian_grid_mean_predictor() -> None:
    source_grid = np.array([[0.0, 0.0], [2.0, 1.0], [4.0, -1.0]])
    readout = PointGaussianReadout(
        (2, 1, 4, 4),
        3,
        bias=True,
        source_grid=source_grid,
        grid_mean_predictor={"hidden_layers": 1, "hidden_features": 5, "final_tanh": True},
    )
    assert readout.source_grid.abs().max() == 1.0
    assert torch.allclose(readout.source_grid.mean(dim=0), torch.zeros(2), atol=1e-6)
    assert readout.mu.shape == (1, 3, 1, 2) and readout.mu.abs().max().item() < 1.0
    assert readout(torch.randn(2, 2, 4, 4)).shape == (2, 3)


# ---------------------------------------------------------------------------------------------------------- LNP


def test_lnp_readout_equals_explicit_spatial_filter(rng: np.random.Generator) -> None:
    readout = LNPReadout(
        (2, 1, 3, 4), 3, mean_activity=torch.tensor([0.1, 0.2, 0.3]), bias=True, smooth_weight=0.5, sparse_weight=2.0
    )
    assert readout.inner_product_kernel.bias.tolist() == pytest.approx([0.1, 0.2, 0.3])
    x = rng.normal(size=(2, 2, 5, 3, 4)).astype(np.float32)
    weight = readout.inner_product_kernel.weight.detach().numpy()[:, :, 0]  # (neurons, channels, h, w)
    expected = np.exp(np.einsum("bctyx,ncyx->btn", x, weight) + np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(readout(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-5)
    assert list(readout.state_dict()) == [
        "inner_product_kernel.weight",
        "inner_product_kernel.bias",
        "_smooth_reg_fn.laplace.filter",
    ]
    laplace = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]])
    rough = sum((correlate2d(w, laplace, mode="same") ** 2).sum() for w in weight.reshape(-1, 3, 4))
    expected_reg = 0.5 * rough / ((weight**2).sum() + 1e-6) + 2.0 * np.abs(weight).mean()
    assert readout.regularizer().item() == pytest.approx(expected_reg, rel=1e-5)
    softplus_readout = LNPReadout((2, 1, 3, 4), 3, nonlinearity="softplus")
    assert torch.all(softplus_readout(torch.from_numpy(x)) > 0)
    with pytest.raises(ValueError, match="nonlinearity"):
        LNPReadout((2, 1, 3, 4), 3, nonlinearity="no_such_function")


# --------------------------------------------------------------------------------------------- spatial contrast


def test_spatial_contrast_readout_equals_explicit_computation(rng: np.random.Generator) -> None:
    neurons, height, width, filter_length, frames = 3, 4, 5, 4, 9
    spatial = np.abs(rng.normal(size=(neurons, height, width))).astype(np.float32)
    temporal = rng.normal(size=(neurons, filter_length)).astype(np.float32)
    readout = SpatialContrastReadout(
        (1, frames, height, width),
        neurons,
        torch.from_numpy(spatial),
        torch.from_numpy(temporal),
        w_init=0.7,
        neuron_chunk_size=2,
    )
    x = rng.normal(size=(2, 1, frames, height, width)).astype(np.float32)
    t_out = frames - filter_length + 1
    expected = np.empty((2, t_out, neurons))
    for n in range(neurons):
        # Cross-correlation: filter index 0 multiplies the oldest frame of each window.
        filtered = np.stack(
            [np.tensordot(x[:, 0, t : t + filter_length], temporal[n], axes=([1], [0])) for t in range(t_out)], axis=1
        )  # (batch, t_out, h, w)
        weight = spatial[n] / (spatial[n].sum() + 1e-8)
        intensity = (filtered * weight).sum(axis=(2, 3))
        contrast = np.sqrt(np.maximum((filtered**2 * weight).sum(axis=(2, 3)) - intensity**2, 1e-6))
        expected[:, :, n] = 4.0 * _softplus(1.0 * (intensity + 0.7 * contrast) - 5.0)
    np.testing.assert_allclose(readout(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-4, atol=1e-6)
    assert list(readout.state_dict()) == [
        "w",
        "nl_a",
        "nl_b",
        "nl_c",
        "bias",
        "spatial_filters",
        "temporal_filters",
        "sf_sums",
    ]
    assert not readout.bias.requires_grad
    with pytest.raises(DataShapeError, match="fewer than the temporal filter length"):
        readout(torch.zeros(1, 1, filter_length - 1, height, width))


def test_multi_spatial_contrast_readout() -> None:
    sessions = {"b": 2, "a": 3}
    readout = MultiSpatialContrastReadout(
        (1, 10, 3, 3),
        sessions,
        spatial_filters_dict={s: torch.ones(n, 3, 3) for s, n in sessions.items()},
        temporal_filters_dict={s: torch.ones(n, 4) for s, n in sessions.items()},
    )
    assert readout.readout_keys() == ["a", "b"]
    assert readout(torch.randn(2, 1, 10, 3, 3), data_key="a").shape == (2, 7, 3)
    with pytest.raises(ValueError, match="no spatial or temporal filters"):
        readout.add_sessions({"c": 1})


# ------------------------------------------------------------------------------------- all readouts: invariants


def _all_readouts() -> dict[str, tuple[Readout, torch.Tensor]]:
    torch.manual_seed(0)
    x5 = torch.randn(2, 3, 4, 5, 6)
    return {
        "gaussian_mask": (GaussianMaskReadout((3, 4, 5, 6), 4, positive=True, scale=True), x5),
        "factorized": (
            FactorizedReadout(
                (3, 4, 5, 6),
                4,
                1.0,
                1.0,
                1.0,
                (5, 6),
                readout_bias=True,
                weights_constraint="absnorm",
                mask_constraint="abs",
                init_scales=[(0.0, 0.5), (0.0, 0.5)],
            ),
            x5,
        ),
        "point_gaussian": (PointGaussianReadout((3, 4, 5, 6), 4, bias=True, init_mu_range=1.0), x5),
        "lnp": (LNPReadout((3, 4, 5, 6), 4, smooth_weight=1.0, sparse_weight=1.0, bias=True), x5),
        "spatial_contrast": (
            SpatialContrastReadout((1, 4, 5, 6), 4, torch.rand(4, 5, 6), torch.randn(4, 2)),
            torch.randn(2, 1, 4, 5, 6),
        ),
    }


@pytest.mark.parametrize("name", ["gaussian_mask", "factorized", "point_gaussian", "lnp", "spatial_contrast"])
def test_forward_never_changes_parameters(name: str) -> None:
    readout, x = _all_readouts()[name]
    with torch.no_grad():  # push parameters outside every constraint set
        for parameter in readout.parameters():
            parameter.add_(-3.0)
    before = _snapshot(readout)
    for mode in (readout.train, readout.eval):
        mode()
        readout(x).sum().backward()
        with torch.no_grad():
            readout(x)
    after = _snapshot(readout)
    assert all(torch.equal(before[key], after[key]) for key in before)


@pytest.mark.parametrize("name", ["gaussian_mask", "factorized", "point_gaussian", "lnp", "spatial_contrast"])
def test_regularizer_is_finite_and_differentiable(name: str) -> None:
    readout, _ = _all_readouts()[name]
    for reduction in ("sum", "mean"):
        readout.zero_grad()
        penalty = readout.regularizer(reduction=reduction)
        assert penalty.dim() == 0 and torch.isfinite(penalty)
        if name == "spatial_contrast":
            assert penalty.item() == 0.0
            continue
        penalty.backward()
        grads = [p.grad for p in readout.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(float(g.abs().sum()) > 0 for g in grads)


def test_outputs_are_batch_time_neurons() -> None:
    for name, (readout, x) in _all_readouts().items():
        expected_time = x.shape[2] - 1 if name == "spatial_contrast" else x.shape[2]
        assert readout(x).shape == (2, expected_time, 4), name


# ----------------------------------------------------------------------------------------------- base + plots


class _SeedDocReadout(Readout):
    """The custom readout of the Models documentation page: only __init__ and forward."""

    def __init__(self, input_shape: tuple[int, ...], num_neurons: int = 150) -> None:
        super().__init__()
        self.num_neurons = num_neurons
        _, channels, _, height, width = input_shape
        self.linear = torch.nn.Linear(channels * height * width, num_neurons)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, time = x.shape[:3]
        frames = x.permute(0, 2, 1, 3, 4).reshape(batch * time, -1)
        return self.linear(frames).reshape(batch, time, self.num_neurons)


def test_minimal_readout_subclass_works_everywhere(tmp_path: Path) -> None:
    readout = _SeedDocReadout((1, 4, 1, 3, 3), num_neurons=5)
    assert readout(torch.randn(2, 4, 6, 3, 3)).shape == (2, 6, 5)
    assert readout.regularizer().item() == 0.0
    assert readout.number_of_neurons() == 5
    readout.save_weight_visualizations(tmp_path, file_format="png", cell_indices=[0, 3], state_suffix="init")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neuron_0_init.png", "neuron_3_init.png"]


def test_plot_weight_for_neuron(tmp_path: Path) -> None:
    readout = GaussianMaskReadout((3, 1, 5, 6), 2)
    figure = readout.plot_weight_for_neuron(1, remove_readout_ticks=True)
    assert len(figure.axes) == 2
    with pytest.raises(IndexError):
        readout.plot_weight_for_neuron(2)
    multi = MultiGaussianMaskReadout(
        (3, 1, 5, 6),
        {"s1": 1, "s2": 2},
        scale=False,
        bias=True,
        gaussian_mean_scale=1.0,
        gaussian_var_scale=1.0,
        positive=False,
    )
    multi.save_weight_visualizations(tmp_path, file_format="png")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.png")) == [
        "s1/neuron_0.png",
        "s2/neuron_0.png",
        "s2/neuron_1.png",
    ]


def test_apply_reduction() -> None:
    x = torch.tensor([1.0, 2.0, 3.0])
    assert float(Readout.apply_reduction(x, "sum")) == 6.0
    assert float(Readout.apply_reduction(x, "mean")) == 2.0
    assert Readout.apply_reduction(x, None) is x
    with pytest.raises(ValueError, match="reduction"):
        Readout.apply_reduction(x, "max")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- multi-session


def _multi_mask(sessions: dict[str, int], **kwargs: object) -> MultiGaussianMaskReadout:
    return MultiGaussianMaskReadout(
        (3, 1, 4, 4),
        sessions,
        scale=True,
        bias=True,
        gaussian_mean_scale=1.0,
        gaussian_var_scale=1.0,
        positive=False,
        **kwargs,
    )  # type: ignore[arg-type]


def test_multi_readout_keys_forward_and_concatenation() -> None:
    readout = _multi_mask({"zeta": 2, "alpha": 3}, mean_activity_dict={"zeta": torch.ones(2), "alpha": torch.ones(3)})
    assert list(readout.keys()) == ["zeta", "alpha"]  # module order = dict order
    assert readout.readout_keys() == ["alpha", "zeta"] == readout.sessions
    x = torch.randn(2, 3, 5, 4, 4)
    per_session = {key: readout(x, data_key=key) for key in ("alpha", "zeta")}
    assert per_session["alpha"].shape == (2, 5, 3)
    with pytest.warns(UserWarning, match="no data_key"):
        combined = readout(x)
    assert torch.equal(combined, torch.cat([per_session["alpha"], per_session["zeta"]], dim=-1))
    with pytest.raises(UnknownSessionError, match=r"'beta'.*alpha"):
        readout(x, data_key="beta")
    with pytest.raises(KeyError):
        readout["beta"]


def test_multi_readout_add_sessions_and_regularizer() -> None:
    readout = _multi_mask({"s1": 2}, readout_reg_avg=True)
    assert readout.regularizer().item() == pytest.approx(readout["s1"].regularizer("mean").item())
    readout.add_sessions({"s2": 4}, mean_activity_dict={"s2": torch.full((4,), 2.0)})
    assert readout.readout_keys() == ["s1", "s2"]
    assert readout["s2"].bias.tolist() == [2.0] * 4
    assert readout["s2"].gaussian_mean_scale == 1.0  # stored kwargs reused
    assert readout.regularizer("s2", reduction="sum").item() == pytest.approx(readout["s2"].regularizer("sum").item())
    with pytest.raises(ValueError, match="already have a readout"):
        readout.add_sessions({"s1": 2})
    with pytest.raises(ValueError, match="data_key"):
        readout.regularizer()
    with pytest.raises(TypeError, match="Readout"):
        readout["s3"] = torch.nn.Linear(2, 2)


def test_multi_readout_initialises_each_readout_once() -> None:
    torch.manual_seed(3)
    multi = MultiSampledGaussianReadout((2, 1, 4, 4), {"s": 3}, bias=True, init_mu_range=0.5, init_sigma_range=0.1)
    torch.manual_seed(3)
    single = PointGaussianReadout((2, 1, 4, 4), 3, bias=True, init_mu_range=0.5, init_sigma_range=0.1)
    assert torch.equal(multi["s"]._mu, single._mu) and torch.equal(multi["s"].sigma, single.sigma)


def test_multi_sampled_gaussian_applies_nonlinearity_per_frame() -> None:
    readout = MultiSampledGaussianReadout(
        (2, 1, 4, 4), {"b": 3, "a": 2}, bias=True, init_mu_range=0.5, init_sigma_range=0.1, gamma=0.3, reg_avg=True
    ).eval()
    x = torch.randn(2, 2, 5, 4, 4)
    frames = x.permute(0, 2, 1, 3, 4).reshape(10, 2, 4, 4)
    expected = F.softplus(readout["b"](frames)).reshape(2, 5, 3)
    assert torch.allclose(readout(x, data_key="b"), expected)
    assert readout["b"].gamma_readout == 0.3 and readout.readout_reg_reduction == "mean"
    with pytest.warns(UserWarning):
        assert readout(x).shape == (2, 5, 5)


def test_clone_readout_shares_the_first_session() -> None:
    def build(sessions: dict[str, int]) -> MultiReadoutBase:
        return MultiReadoutBase((3, 1, 4, 4), sessions, base_readout=GaussianMaskReadout, clone_readout=True)

    readout = build({"s1": 3, "s2": 3})
    assert isinstance(readout["s2"], ClonedReadout)
    assert "s2._source.features" in readout.state_dict()
    x = torch.randn(1, 3, 2, 4, 4)
    with torch.no_grad():
        readout["s2"].alpha.fill_(2.0)
        readout["s2"].beta.fill_(1.0)
    assert torch.allclose(readout(x, data_key="s2"), 2 * readout(x, data_key="s1") + 1)
    assert torch.isfinite(readout.regularizer("s2"))
    with pytest.raises(DataShapeError, match="equal neuron counts"):
        build({"s1": 3, "s2": 4})


def test_other_multi_readouts_state_dict_keys() -> None:
    factorized = MultiFactorizedReadout((3, 1, 4, 5), {"s": 2}, 1.0, 1.0, 1.0, init_scales=[(0, 1), (0, 1)])
    assert factorized["s"].mask_size == (4, 5)
    assert set(factorized.state_dict()) == {
        "s.mask_weights",
        "s.feature_weights",
        "s.bias",
        "s._input_weights_regularizer_spatial.laplace.filter",
    }
    sampled = MultiSampledGaussianReadout((3, 1, 4, 5), {"s": 2}, bias=True, init_mu_range=0.1, init_sigma_range=0.1)
    assert set(sampled.state_dict()) == {"s._mu", "s.sigma", "s._features", "s.bias"}
    lnp = MultipleLNPReadout((3, 1, 4, 5), {"s": 2}, bias=True, mean_activity_dict={"s": torch.ones(2)})
    assert set(lnp.state_dict()) == {
        "s.inner_product_kernel.weight",
        "s.inner_product_kernel.bias",
        "s._smooth_reg_fn.laplace.filter",
    }
    assert lnp["s"].inner_product_kernel.bias.tolist() == [1.0, 1.0]


def test_multi_readout_base_needs_a_readout_class() -> None:
    with pytest.raises(ValueError, match="base_readout"):
        MultiReadoutBase((3, 1, 4, 4), {"s": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generic = MultiReadoutBase((3, 1, 4, 4), {"s": 1}, base_readout=GaussianMaskReadout, positive=True)
    assert generic["s"].positive


def test_apply_constraints_on_multi_readout() -> None:
    readout = MultiGaussianMaskReadout(
        (3, 1, 4, 4), {"s": 2}, scale=False, bias=True, gaussian_mean_scale=1.0, gaussian_var_scale=1.0, positive=True
    )
    with torch.no_grad():
        readout["s"].features.fill_(-1.0)
    readout.apply_constraints()
    assert readout["s"].features.abs().max().item() == 0.0


def test_frozen_gaussian_masks_are_computed_once_and_follow_weight_changes() -> None:
    import copy
    import pickle

    readout = GaussianMaskReadout((2, 3, 4, 6), 5)
    x = torch.randn(2, 2, 3, 4, 6, generator=torch.Generator().manual_seed(0))
    calls: list[int] = []
    original = readout.get_mask
    readout.get_mask = lambda: calls.append(1) or original()  # type: ignore[method-assign]
    readout.requires_grad_(False)
    first, second = readout(x), readout(x)
    assert len(calls) == 1 and torch.equal(first, second)
    readout.mask_mean.data[0] += 0.3  # through .data: still noticed
    moved = readout(x)
    assert len(calls) == 2 and not torch.equal(moved[..., 0], first[..., 0])
    torch.testing.assert_close(moved[..., 1:], first[..., 1:])  # the other neurons' masks did not move
    readout.requires_grad_(True)
    readout(x).sum().backward()
    assert len(calls) == 3 and readout.mask_mean.grad is not None  # training: fresh masks with a graph
    plain = GaussianMaskReadout((2, 3, 4, 6), 5).requires_grad_(False)
    expected = plain(x)
    assert b"frozen_cache" not in pickle.dumps(plain)  # the cache lives outside the module: never pickled
    torch.testing.assert_close(copy.deepcopy(plain)(x), expected)
