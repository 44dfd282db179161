"""Space-time convolutions: reference math, state_dict layout, shapes, sessions, and the exact fast paths."""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataFormatError, DataShapeError
from openretina.modules.layers import _separable_fast
from openretina.modules.layers.convolutions import (
    STSeparableBatchConv3d,
    TimeIndependentConv3D,
    TorchFullConv3D,
    TorchSTSeparableConv3D,
    compute_temporal_kernel,
    conv_backend,
    get_conv_backend,
    get_conv_class,
    set_conv_backend,
    temporal_smoothing,
)

BACKENDS = ["dense", "spatial_first", "spatial_matrix", "temporal_basis", "auto"]


def numpy_basis(length: int, factor: int, stretch: float) -> tuple[np.ndarray, np.ndarray]:
    """Spec formula, written with explicit loops in float64."""
    n_freq = length // factor
    sin_b = np.zeros((n_freq, length))
    cos_b = np.zeros((n_freq, length))
    for j in range(length):
        t = j - length
        mask = 1.0 / (1.0 + math.exp(-t - int(0.95 * length) / stretch))
        phase = stretch * t * 2 * math.pi / length
        for k in range(n_freq):
            sin_b[k, j] = mask * math.sin(k * phase)
            cos_b[k, j] = mask * math.cos(k * phase)
    return sin_b, cos_b


def reference_conv(conv: STSeparableBatchConv3d, x: torch.Tensor, log_speed: float = 0.0) -> torch.Tensor:
    """Outer-product kernel from the numpy basis, one dense conv3d in float64."""
    sin_b, cos_b = numpy_basis(conv.temporal_kernel_size, conv.subsampling_factor, math.exp(log_speed))
    sin_w = conv.sin_weights.detach().double().numpy()
    cos_w = conv.cos_weights.detach().double().numpy()
    temporal = np.einsum("oik,kt->oit", sin_w, sin_b) + np.einsum("oik,kt->oit", cos_w, cos_b)
    full = torch.from_numpy(temporal)[..., None, None] * conv.weight_spatial.detach().double()
    bias = None if conv.bias is None else conv.bias.detach().double()
    return F.conv3d(x.double(), full, bias, conv.stride, conv.padding)


def randomised(conv: STSeparableBatchConv3d, seed: int = 0) -> STSeparableBatchConv3d:
    """Give every weight O(1) values so that no term is negligible in the comparisons."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in conv.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    return conv


@pytest.fixture(autouse=True)
def _fresh_backend() -> Iterator[None]:
    """Tests that are not about backends run on the reference path (no autotuning cost); restore afterwards."""
    previous = get_conv_backend()
    set_conv_backend("dense")
    _separable_fast.clear_autotune_cache()
    yield
    set_conv_backend(previous)


# ---------------------------------------------------------------------------------------------- temporal basis


@pytest.mark.parametrize(("length", "factor", "log_speed"), [(21, 3, 0.0), (11, 3, 0.4), (8, 3, -0.7), (5, 5, 0.2)])
def test_temporal_basis_matches_spec_formula(length: int, factor: int, log_speed: float) -> None:
    stretch = torch.tensor([math.exp(log_speed)], dtype=torch.float64)
    sin_b, cos_b = STSeparableBatchConv3d.temporal_basis(stretch, length, factor)
    exp_sin, exp_cos = numpy_basis(length, factor, math.exp(log_speed))
    np.testing.assert_allclose(sin_b.numpy(), exp_sin, atol=1e-12)
    np.testing.assert_allclose(cos_b.numpy(), exp_cos, atol=1e-12)


def test_mask_tapers_oldest_taps_as_documented() -> None:
    time = torch.arange(21, dtype=torch.float64) - 21
    mask = STSeparableBatchConv3d.mask_tf(time, torch.tensor([1.0], dtype=torch.float64), 21)
    np.testing.assert_allclose(mask[:7].numpy(), [0.119, 0.269, 0.5, 0.731, 0.881, 0.953, 0.982], atol=1e-3)
    assert mask[-1].item() == pytest.approx(1.0 / (1.0 + math.exp(-18.0)), rel=1e-12)


def test_compute_temporal_kernel_shape_and_values() -> None:
    gen = torch.Generator().manual_seed(1)
    sin_w, cos_w = torch.randn(4, 3, 3, generator=gen), torch.randn(4, 3, 3, generator=gen)
    kernel = compute_temporal_kernel(torch.tensor([0.25]), sin_w, cos_w, 11, 3)
    assert kernel.shape == (4, 3, 11, 1, 1)
    sin_b, cos_b = numpy_basis(11, 3, math.exp(0.25))
    expected = np.einsum("oik,kt->oit", sin_w.double().numpy(), sin_b) + np.einsum(
        "oik,kt->oit", cos_w.double().numpy(), cos_b
    )
    np.testing.assert_allclose(kernel[..., 0, 0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_temporal_smoothing_hand_computed() -> None:
    sin = torch.tensor([[[1.0, 2.0, 0.0]], [[0.0, 0.0, 1.0]]])  # (out=2, in=1, K=3): λ = 0.1, 0.5, 0.9
    cos = torch.tensor([[[0.0, 1.0, 0.0]], [[2.0, 0.0, 0.0]]])
    sin_part = (0.1 * 1) ** 2 + (0.5 * 2) ** 2 + (0.9 * 1) ** 2
    cos_part = (0.5 * 1) ** 2 + (0.1 * 2) ** 2
    assert temporal_smoothing(sin, cos).item() == pytest.approx((sin_part + cos_part) / 2)


# ------------------------------------------------------------------------------------------ exactness of paths

GEOMETRIES = [
    # (in, out, k_t, k_s, input shape (B, C, T, H, W), stride, padding)
    (2, 4, 9, 5, (2, 2, 14, 10, 9), 1, 0),
    (3, 5, 7, 3, (2, 3, 12, 8, 7), 1, (0, 1, 1)),
    (3, 4, 7, 3, (1, 3, 10, 7, 6), 1, "same"),
    (2, 3, 6, 3, (1, 2, 11, 8, 8), 2, 1),
    (2, 3, 6, 4, (1, 2, 11, 8, 8), 1, "same"),  # even kernels: only the dense path can pad this
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"k{g[2]}x{g[3]}-s{g[5]}-p{g[6]}")
def test_forward_equals_outer_product_conv3d(backend: str, geometry: tuple) -> None:
    n_in, n_out, k_t, k_s, shape, stride, padding = geometry
    conv = randomised(STSeparableBatchConv3d(n_in, n_out, {}, k_t, k_s, stride=stride, padding=padding))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    with conv_backend(backend):
        out = conv(x)
    expected = reference_conv(conv, x)
    assert out.shape == expected.shape
    assert (out.double() - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_equal_dense_reference(backend: str) -> None:
    speeds = {"log_speed_s1": nn.Parameter(torch.tensor([0.3]))}
    conv = randomised(STSeparableBatchConv3d(3, 4, speeds, 9, 5, padding=(0, 2, 2)))
    with torch.no_grad():
        speeds["log_speed_s1"].fill_(0.3)
    x = torch.randn(2, 3, 15, 9, 8, generator=torch.Generator().manual_seed(3), requires_grad=True)
    weights = torch.randn(2, 4, 7, 9, 8, generator=torch.Generator().manual_seed(4))
    assert conv.bias is not None
    params = [x, conv.sin_weights, conv.cos_weights, conv.weight_spatial, conv.bias, speeds["log_speed_s1"]]

    def grads(active: str) -> list[torch.Tensor]:
        with conv_backend(active):
            return list(torch.autograd.grad((conv((x, "s1")) * weights).sum(), params))

    for got, want in zip(grads(backend), grads("dense")):
        scale = want.abs().max().item()
        assert (got - want).abs().max().item() <= 1e-5 * max(scale, 1.0)
    # and the dense path's input gradient is the true one: compare against float64 autograd
    x64 = x.detach().double().requires_grad_()
    (g64,) = torch.autograd.grad((reference_conv(conv, x64, 0.3) * weights.double()).sum(), [x64])
    got_x = grads(backend)[0]
    assert (got_x.double() - g64).abs().max().item() <= 1e-5 * g64.abs().max().item()


def test_bf16_autocast_within_one_percent() -> None:
    conv = randomised(STSeparableBatchConv3d(2, 8, {}, 12, 5))
    x = torch.randn(4, 2, 20, 12, 10, generator=torch.Generator().manual_seed(5))
    expected = reference_conv(conv, x)
    for backend in BACKENDS:
        with conv_backend(backend), torch.autocast("cpu", dtype=torch.bfloat16):
            out = conv(x)
        rel = (out.double() - expected).norm() / expected.norm()
        assert rel.item() < 1e-2, backend


def test_autotune_has_no_side_effects_and_caches_choice() -> None:
    conv = randomised(STSeparableBatchConv3d(2, 3, {}, 6, 3))
    x = torch.randn(2, 2, 10, 7, 7, requires_grad=True)
    with conv_backend("auto"):
        out = conv(x)
    assert all(p.grad is None for p in conv.parameters()) and x.grad is None
    choices = _separable_fast.autotune_choices()
    assert len(choices) == 1 and next(iter(choices.values())) in set(BACKENDS) - {"auto"}
    assert torch.allclose(out, reference_conv(conv, x).float(), rtol=0, atol=1e-5 * out.abs().max().item())


@pytest.mark.parametrize("backend", BACKENDS)
def test_works_under_torch_func_transforms(backend: str) -> None:
    conv = randomised(STSeparableBatchConv3d(2, 3, {}, 5, 3))
    x = torch.randn(4, 1, 2, 8, 6, 6)
    with conv_backend(backend):
        batched = torch.func.vmap(conv)(x)
        jacobian = torch.func.jacrev(lambda z: conv(z).sum())(x[0])
    with conv_backend("dense"):
        expected = torch.stack([conv(sample) for sample in x])
        z = x[0].clone().requires_grad_()
        (expected_jacobian,) = torch.autograd.grad(conv(z).sum(), [z])
    assert torch.allclose(batched, expected, atol=1e-5 * expected.abs().max().item())
    assert torch.allclose(jacobian, expected_jacobian, atol=1e-5 * expected_jacobian.abs().max().item())


def test_backend_setting_validation_and_context_restore() -> None:
    with pytest.raises(ValueError, match="Unknown convolution backend 'fastest'"):
        set_conv_backend("fastest")
    set_conv_backend("auto")
    with conv_backend("spatial_first"):
        assert get_conv_backend() == "spatial_first"
    assert get_conv_backend() == "auto"
    set_conv_backend("dense")


def test_forward_keeps_no_activations() -> None:
    conv = STSeparableBatchConv3d(2, 3, {}, 6, 3)
    conv(torch.randn(1, 2, 8, 5, 5))
    tensors = {name for name, value in vars(conv).items() if isinstance(value, torch.Tensor)}
    assert tensors == set()
    assert not hasattr(conv, "weight") and conv.full_weight().shape == (3, 2, 6, 3, 3)


# ------------------------------------------------------------------------------------------------ state dicts


def test_custom_separable_state_dict_keys() -> None:
    speeds = {"log_speed_sessA": nn.Parameter(torch.zeros(1))}
    conv = STSeparableBatchConv3d(2, 16, speeds, 21, 11)
    shapes = {k: tuple(v.shape) for k, v in conv.state_dict().items()}
    assert shapes == {
        "sin_weights": (16, 2, 7),
        "cos_weights": (16, 2, 7),
        "weight_spatial": (16, 2, 1, 11, 11),
        "bias": (16,),
        "log_speed_sessA": (1,),
        "_log_speed_default": (1,),
    }
    assert list(shapes)[-1] == "_log_speed_default"  # parameters before buffers
    assert "bias" not in STSeparableBatchConv3d(2, 16, {}, 21, 11, bias=False).state_dict()


def test_other_conv_state_dict_keys() -> None:
    separable = {k: tuple(v.shape) for k, v in TorchSTSeparableConv3D(2, 4, {}, 5, 3).state_dict().items()}
    assert separable == {
        "_log_speed_default": (1,),
        "space_conv.weight": (4, 2, 1, 3, 3),
        "space_conv.bias": (4,),
        "time_conv.weight": (4, 4, 5, 1, 1),
        "time_conv.bias": (4,),
    }
    full = {k: tuple(v.shape) for k, v in TorchFullConv3D(2, 4, {}, 5, 3, bias=False).state_dict().items()}
    assert full == {"_log_speed_default": (1,), "conv.weight": (4, 2, 5, 3, 3)}
    independent = {k: tuple(v.shape) for k, v in TimeIndependentConv3D(1, 4, {}, 1, 30).state_dict().items()}
    assert independent == {"conv.weight": (4, 1, 1, 30, 30), "conv.bias": (4,)}


def test_reference_state_dict_loads_and_reproduces_outputs() -> None:
    source = randomised(STSeparableBatchConv3d(2, 4, {}, 9, 5))
    state = {k: v.clone() for k, v in source.state_dict().items()}
    target = STSeparableBatchConv3d(2, 4, {}, 9, 5)
    target.load_state_dict(state, strict=True)
    x = torch.randn(1, 2, 12, 8, 8)
    assert torch.equal(target(x), source(x))


# ------------------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize(
    ("cls", "padding", "expected"),
    [
        (STSeparableBatchConv3d, 0, (2, 4, 16 - 7 + 1, 11 - 4, 9 - 4)),
        (STSeparableBatchConv3d, (0, 2, 2), (2, 4, 10, 11, 9)),
        (STSeparableBatchConv3d, "same", (2, 4, 16, 11, 9)),
        (TorchSTSeparableConv3D, 0, (2, 4, 10, 7, 5)),
        (TorchSTSeparableConv3D, 1, (2, 4, 12, 9, 7)),
        (TorchSTSeparableConv3D, "same", (2, 4, 16, 11, 9)),
        (TorchFullConv3D, 0, (2, 4, 10, 7, 5)),
        (TorchFullConv3D, (0, 2, 2), (2, 4, 10, 11, 9)),
        (TimeIndependentConv3D, 0, (2, 4, 16, 7, 5)),
        (TimeIndependentConv3D, (0, 2, 2), (2, 4, 16, 11, 9)),
    ],
)
def test_output_shape_arithmetic(cls: type[nn.Module], padding: object, expected: tuple[int, ...]) -> None:
    conv = cls(3, 4, {}, 7, 5, padding=padding)
    assert tuple(conv(torch.randn(2, 3, 16, 11, 9)).shape) == expected


def test_torch_separable_pads_each_axis_once() -> None:
    """With int padding the result is the conv3d of the composed kernel padded once (the reference padded twice)."""
    conv = TorchSTSeparableConv3D(2, 3, {}, 4, 3, padding=1, bias=False)
    x = torch.randn(1, 2, 9, 6, 6)
    space = conv.space_conv.weight.detach()[:, :, 0]  # (mid, in, k, k)
    time = conv.time_conv.weight.detach()[:, :, :, 0, 0]  # (out, mid, k_t)
    composed = torch.einsum("omt,mihw->oithw", time, space)
    expected = F.conv3d(x, composed, padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-6)


def test_spec_short_kernels_and_factor_validation() -> None:
    for t, s in [(1, 1), (1, 3), (5, 3)]:
        conv = STSeparableBatchConv3d(2, 5, {}, t, s, subsampling_factor=min(t, 3))
        assert conv(torch.zeros(1, 2, 7, 18, 16)).shape == (1, 5, 7 - t + 1, 18 - s + 1, 16 - s + 1)
    with pytest.raises(ValueError, match="temporal_kernel_size \\(2\\) must be at least subsampling_factor \\(3\\)"):
        STSeparableBatchConv3d(2, 5, {}, 2, 3)


def test_wrong_input_channels_is_a_clear_error() -> None:
    conv = STSeparableBatchConv3d(2, 5, {}, 5, 3)
    with pytest.raises(DataShapeError, match=r"2 channels.*\(1, 3, 7, 9, 9\)"):
        conv(torch.zeros(1, 3, 7, 9, 9))


# ----------------------------------------------------------------------------------------------------- sessions


def test_per_session_log_speed() -> None:
    speeds = {"log_speed_a": nn.Parameter(torch.zeros(1)), "log_speed_b": nn.Parameter(torch.tensor([0.5]))}
    conv = randomised(STSeparableBatchConv3d(2, 3, speeds, 9, 3), seed=7)
    with torch.no_grad():
        speeds["log_speed_a"].zero_()
        speeds["log_speed_b"].fill_(0.5)
        conv._log_speed_default.zero_()
    x = torch.randn(2, 2, 14, 6, 6)
    default = conv(x)
    assert torch.equal(conv((x, "a")), default)
    assert torch.equal(conv((x, None)), default)
    faster = conv((x, "b"))
    assert (faster.double() - reference_conv(conv, x, 0.5)).abs().max() < 1e-5 * faster.abs().max()
    assert not torch.allclose(faster, default)
    (grad,) = torch.autograd.grad(conv((x, "b")).sum(), [speeds["log_speed_b"]])
    assert grad.abs().item() > 0
    assert conv.log_speed_b is speeds["log_speed_b"]
    with pytest.raises(DataFormatError, match=r"no temporal speed for session 'c'.*\['a', 'b'\]"):
        conv((x, "c"))


def test_session_key_without_batch_adaptation_uses_default_speed() -> None:
    conv = STSeparableBatchConv3d(2, 3, {}, 6, 3)
    x = torch.randn(1, 2, 8, 5, 5)
    assert torch.equal(conv((x, "any_session")), conv(x))


def test_time_independent_spatial_weight_is_trainable() -> None:
    conv = TimeIndependentConv3D(1, 2, {}, 1, 3)
    assert conv.weight_spatial is conv.conv.weight
    assert not hasattr(conv, "_log_speed_default")


# --------------------------------------------------------------------------------------------- registry, plots


def test_get_conv_class() -> None:
    assert get_conv_class("custom_separable") is STSeparableBatchConv3d
    assert get_conv_class("separable") is TorchSTSeparableConv3D
    assert get_conv_class("full") is TorchFullConv3D
    assert get_conv_class("time_independent") is TimeIndependentConv3D
    with pytest.raises(ValueError, match=r"Unknown convolution_type 'fancy'.*custom_separable"):
        get_conv_class("fancy")


def test_weight_plots_and_files(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conv = STSeparableBatchConv3d(1, 2, {"log_speed_a": nn.Parameter(torch.zeros(1))}, 6, 3)
    figure = conv.plot_weights(0, 1, plot_log_speed=True)
    assert len(figure.axes) == 5  # 4 panels + colorbar
    plt.close(figure)
    figure = TimeIndependentConv3D(1, 1, {}, 1, 3).plot_weights(0, 0)
    assert len(figure.axes) == 3  # 2 panels + colorbar
    plt.close(figure)
    conv.save_weight_visualizations(tmp_path, file_format="png", state_suffix="epoch1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0_0_epoch1.png", "0_1_epoch1.png"]


def test_frozen_separable_kernel_is_reused_until_a_weight_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = STSeparableBatchConv3d(2, 3, {}, temporal_kernel_size=6, spatial_kernel_size=3)
    x = torch.randn(2, 2, 8, 5, 5, generator=torch.Generator().manual_seed(0))
    builds: list[int] = []
    build = STSeparableBatchConv3d._build_separable_kernel
    monkeypatch.setattr(
        STSeparableBatchConv3d, "_build_separable_kernel", lambda self, key: builds.append(1) or build(self, key)
    )
    conv.requires_grad_(False)
    first, second = conv(x), conv(x)
    assert len(builds) == 1 and torch.equal(first, second)
    with torch.no_grad():
        conv.weight_spatial.data[0, 0, 0, 1, 1] += 1.0  # through .data: no version bump, still detected
    changed = conv(x)
    assert len(builds) == 2
    torch.testing.assert_close(changed, torch.nn.functional.conv3d(x, conv.full_weight(), conv.bias))
    assert b"frozen_cache" not in pickle.dumps(conv)  # the cache lives outside the module: never pickled
    conv.requires_grad_(True)  # trainable weights: a fresh kernel with a graph on every call
    conv(x).sum().backward()
    conv(x).sum().backward()
    assert len(builds) == 4 and conv.weight_spatial.grad is not None
