"""Cores: state_dict layout, zoo output shapes, regularisers, BatchNorm safety and the frame-count check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from openretina.errors import DataFormatError, DataShapeError, InsufficientFramesError
from openretina.modules.core.base_core import Core, Core3d, DummyCore, SimpleCoreWrapper
from openretina.modules.core.gru_core import ConditionedGRUCore, ConvGRUCore
from openretina.modules.layers.convolutions import conv_backend
from openretina.modules.layers.regularizers import EPS


@pytest.fixture(autouse=True)
def _dense_convolutions() -> Iterator[None]:
    """Skip the per-shape autotuning of the fast conv path: these tests check shapes and values, not speed."""
    with conv_backend("dense"):
        yield


ZOO_COMMON: dict[str, Any] = {
    "gamma_input": 0.0,
    "gamma_hidden": 0.0,
    "gamma_in_sparse": 0.0,
    "gamma_temporal": 40.0,
    "input_padding": 0,
    "cut_first_n_frames": 0,
    "dropout_rate": 0.0,
    "convolution_type": "custom_separable",
}

# (core kwargs, input (C, H, W), expected output (C', H', W')); every zoo CNN consumes 30 frames except Goldin.
ZOO_CORES: dict[str, tuple[dict[str, Any], tuple[int, int, int], tuple[int, int, int], int]] = {
    "hoefling_2024_low_res": (
        {
            **ZOO_COMMON,
            "channels": [2, 16, 16],
            "temporal_kernel_sizes": [21, 11],
            "spatial_kernel_sizes": [11, 5],
            "hidden_padding": [0, 2, 2],
        },
        (2, 18, 16),
        (16, 8, 6),
        30,
    ),
    "hoefling_2024_high_res": (
        {
            **ZOO_COMMON,
            "channels": [2, 16, 16, 16, 16],
            "temporal_kernel_sizes": [13, 11, 5, 5],
            "spatial_kernel_sizes": [15, 15, 7, 7],
            "hidden_padding": [0, 5, 5],
            "maxpool_every_n_layers": 2,
        },
        (2, 72, 64),
        (16, 18, 16),
        30,
    ),
    "karamanlis_2024": (
        {
            **ZOO_COMMON,
            "channels": [1, 16, 32, 64],
            "temporal_kernel_sizes": [11, 11, 11],
            "spatial_kernel_sizes": [21, 15, 11],
            "hidden_padding": [0, 5, 5],
        },
        (1, 60, 80),
        (64, 36, 56),
        30,
    ),
    "maheswaranathan_2023": (
        {
            **ZOO_COMMON,
            "channels": [1, 16, 32],
            "temporal_kernel_sizes": [21, 11],
            "spatial_kernel_sizes": [15, 11],
            "hidden_padding": [0, 2, 2],
        },
        (1, 50, 50),
        (32, 30, 30),
        30,
    ),
    "goldin_2022": (
        {
            **ZOO_COMMON,
            "channels": [1, 4],
            "temporal_kernel_sizes": [1],
            "spatial_kernel_sizes": [30],
            "hidden_padding": 0,
            "convolution_type": "time_independent",
            "gamma_temporal": 0.0,
            "gamma_input": 0.4654576767872573,
        },
        (1, 108, 108),
        (4, 79, 79),
        0,
    ),
    "sridhar_2025": (
        {
            **ZOO_COMMON,
            "channels": [1, 64, 64, 64],
            "temporal_kernel_sizes": [15, 11, 7],
            "spatial_kernel_sizes": [21, 15, 11],
            "hidden_padding": 0,
            "dropout_rate": 0.031,
            "gamma_input": 0.4698,
            "gamma_in_sparse": 0.2990,
            "gamma_hidden": 0.4474,
            "gamma_temporal": 92.195,
        },
        (1, 80, 90),
        (64, 36, 46),
        30,
    ),
}

# `core.` keys of the reference Höfling low-res checkpoint, prefix stripped, in state_dict order.
HOEFLING_LOW_RES_CORE_KEYS = [
    "_input_weights_regularizer_spatial.laplace.filter",
    "features.layer0.conv.sin_weights",
    "features.layer0.conv.cos_weights",
    "features.layer0.conv.weight_spatial",
    "features.layer0.conv._log_speed_default",
    "features.layer0.norm.weight",
    "features.layer0.norm.bias",
    "features.layer0.norm.running_mean",
    "features.layer0.norm.running_var",
    "features.layer0.norm.num_batches_tracked",
    "features.layer0.bias.bias",
    "features.layer1.conv.sin_weights",
    "features.layer1.conv.cos_weights",
    "features.layer1.conv.weight_spatial",
    "features.layer1.conv._log_speed_default",
    "features.layer1.norm.weight",
    "features.layer1.norm.bias",
    "features.layer1.norm.running_mean",
    "features.layer1.norm.running_var",
    "features.layer1.norm.num_batches_tracked",
    "features.layer1.bias.bias",
]


def _low_res(**overrides: Any) -> SimpleCoreWrapper:
    return SimpleCoreWrapper(**{**ZOO_CORES["hoefling_2024_low_res"][0], **overrides})


def _small_core(**overrides: Any) -> SimpleCoreWrapper:
    kwargs: dict[str, Any] = {
        "channels": [2, 3, 4],
        "temporal_kernel_sizes": [6, 3],
        "spatial_kernel_sizes": [3, 3],
        "gamma_input": 0.0,
        "gamma_temporal": 0.0,
        "gamma_in_sparse": 0.0,
        "gamma_hidden": 0.0,
        "cut_first_n_frames": 0,
        "input_padding": 0,
        "hidden_padding": [0, 1, 1],
    }
    return SimpleCoreWrapper(**{**kwargs, **overrides})


# --------------------------------------------------------------------------------------------- SimpleCoreWrapper
def test_hoefling_low_res_state_dict_matches_reference_keys_and_shapes() -> None:
    state = _low_res().state_dict()
    assert list(state) == HOEFLING_LOW_RES_CORE_KEYS
    assert state["features.layer0.conv.sin_weights"].shape == (16, 2, 7)
    assert state["features.layer1.conv.cos_weights"].shape == (16, 16, 3)
    assert state["features.layer0.conv.weight_spatial"].shape == (16, 2, 1, 11, 11)
    assert state["features.layer1.conv.weight_spatial"].shape == (16, 16, 1, 5, 5)
    assert state["features.layer0.bias.bias"].shape == (1, 16, 1, 1, 1)
    assert state["_input_weights_regularizer_spatial.laplace.filter"].shape == (1, 1, 3, 3)
    # Same parameter count as the reference core (12,352).
    assert sum(p.numel() for p in _low_res().parameters()) == 12352


@pytest.mark.parametrize("name", sorted(ZOO_CORES))
def test_zoo_core_output_shape_forward_and_analytic(name: str) -> None:
    kwargs, (channels, height, width), (out_c, out_h, out_w), consumed = ZOO_CORES[name]
    time = consumed + 2
    core = SimpleCoreWrapper(**kwargs)
    assert core.number_of_cut_frames() == consumed
    assert core.output_shape((channels, time, height, width)) == (out_c, 2, out_h, out_w)
    # The forward pass checks the same arithmetic on a narrow copy (shapes do not depend on hidden widths).
    narrow = SimpleCoreWrapper(**{**kwargs, "channels": [channels] + [3] * (len(kwargs["channels"]) - 1)}).eval()
    with torch.no_grad():
        out = narrow(torch.randn(1, channels, time, height, width))
    assert out.shape == (1, 3, 2, out_h, out_w)


def test_hoefling_worked_example_50_frames() -> None:
    core = _low_res().eval()
    with torch.no_grad():
        assert core(torch.zeros(1, 2, 50, 18, 16)).shape == (1, 16, 20, 8, 6)


def test_construction_and_output_shape_leave_batchnorm_statistics_untouched() -> None:
    core = _low_res()
    core.output_shape((2, 50, 18, 16))
    for layer in core.features:
        assert int(layer.norm.num_batches_tracked) == 0
        assert torch.all(layer.norm.running_mean == 0) and torch.all(layer.norm.running_var == 1)
    assert core.training


def test_too_few_frames_raise_insufficient_frames_error() -> None:
    core = _low_res()
    with pytest.raises(InsufficientFramesError, match="consumes 30 frames of history; give at least 31 time steps"):
        core(torch.zeros(1, 2, 30, 18, 16))
    # The check runs before any layer, so BatchNorm statistics stay untouched.
    assert int(core.features.layer0.norm.num_batches_tracked) == 0
    assert core(torch.zeros(1, 2, 31, 18, 16)).shape[2] == 1


def test_bad_input_layout_raises_shape_errors() -> None:
    core = _small_core()
    with pytest.raises(DataShapeError, match="batch, channels, time, height, width"):
        core(torch.zeros(2, 10, 8, 8))
    with pytest.raises(DataShapeError, match="expected 2 stimulus channels"):
        core(torch.zeros(1, 3, 10, 8, 8))
    # 3x3 kernels without padding, then 3x3 with padding 1: a 2-pixel-wide stimulus leaves no column.
    with pytest.raises(DataShapeError, match=r"8x2 pixels .* leaves 6x0 output pixels"):
        core(torch.zeros(1, 2, 10, 8, 2))
    with pytest.raises(DataShapeError, match="leaves 0x0 output pixels"):
        ConvGRUCore(channels=[1, 2], temporal_kernel_sizes=3, spatial_kernel_sizes=5)(torch.zeros(1, 1, 4, 4, 4))


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="at least one layer"):
        _small_core(channels=[2])
    with pytest.raises(ValueError, match="kernel sizes"):
        _small_core(temporal_kernel_sizes=[6])
    with pytest.raises(ValueError, match="kernel sizes"):
        _small_core(spatial_kernel_sizes=[3, 3, 3])
    with pytest.raises(ValueError, match="channels\\[0\\] must be 1"):
        _small_core(color_squashing_weights=(0.5, 0.5))
    with pytest.raises(ValueError, match="gamma_temporal"):
        _small_core(convolution_type="full", gamma_temporal=1.0)
    with pytest.warns(UserWarning, match="cut_first_n_frames"):
        _small_core(cut_first_n_frames=2)


def test_padding_resolution_true_false_and_explicit() -> None:
    same = _small_core(input_padding=True, hidden_padding=True)
    assert same.paddings == ("same", "same")
    assert same.number_of_cut_frames() == 0
    assert same.output_shape((2, 7, 9, 8)) == (4, 7, 9, 8)
    unpadded = _small_core(input_padding=False, hidden_padding=False)
    assert unpadded.paddings == (0, 0)
    assert unpadded.output_shape((2, 10, 9, 8)) == (4, 10 - 5 - 2, 5, 4)
    # An int is a padding width on every axis, not a bool: padding 1 keeps size for kernels of 3 only.
    explicit = _small_core(input_padding=1, hidden_padding=(0, 1, 1))
    assert explicit.output_shape((2, 10, 9, 8)) == (4, 10 + 2 - 5 - 2, 9, 8)
    with torch.no_grad():
        assert explicit.eval()(torch.zeros(1, 2, 10, 9, 8)).shape == (1, 4, 5, 9, 8)


def test_cut_dropout_pool_downsample_and_colour_squashing() -> None:
    with pytest.warns(UserWarning):
        core = _small_core(
            channels=[1, 3, 4],
            cut_first_n_frames=2,
            dropout_rate=0.2,
            maxpool_every_n_layers=1,
            downsample_input_kernel_size=(2, 1, 1),
            color_squashing_weights=(0.3, 0.7),
        )
    assert [name for name, _ in core.features.layer0.named_children()] == [
        "conv",
        "norm",
        "bias",
        "nonlin",
        "dropout",
        "pool",
    ]
    assert list(core.state_dict())[-1] == "color_squashing_layer.channel_weights"
    # Time: 40 // 2 = 20, minus 5 and 2 taps, minus the cut of 2 -> 11. Space: 12 -> 10 -> 5 -> 5 -> 2.
    assert core.output_shape((2, 40, 12, 12)) == (4, 11, 2, 2)
    # Fewest frames: 2 * (5 + 2 + 2 + 1) = 20.
    assert core.min_input_frames() == 20 and core.number_of_cut_frames() == 19
    with torch.no_grad():
        assert core.eval()(torch.zeros(1, 2, 40, 12, 12)).shape == (1, 4, 11, 2, 2)
    with pytest.raises(InsufficientFramesError, match="at least 20"):
        core(torch.zeros(1, 2, 19, 12, 12))


def test_maxpool_placement_every_second_layer() -> None:
    core = SimpleCoreWrapper(**{**ZOO_CORES["hoefling_2024_high_res"][0]})
    pooled = [i for i, layer in enumerate(core.features) if hasattr(layer, "pool")]
    assert pooled == [0, 2]


@pytest.mark.parametrize(
    "conv_type, expected",
    [
        ("separable", ["_log_speed_default", "space_conv.weight", "time_conv.weight"]),
        ("full", ["_log_speed_default", "conv.weight"]),
        ("time_independent", ["conv.weight"]),
    ],
)
def test_conv_type_state_keys(conv_type: str, expected: list[str]) -> None:
    core = _small_core(convolution_type=conv_type)
    conv_keys = sorted(k.removeprefix("features.layer0.conv.") for k in core.state_dict() if ".layer0.conv." in k)
    assert conv_keys == sorted(expected)


@pytest.mark.parametrize("conv_type", ["custom_separable", "separable", "full", "time_independent"])
def test_every_conv_type_output_shape_matches_forward(conv_type: str) -> None:
    core = _small_core(convolution_type=conv_type, input_padding=(0, 1, 1), hidden_padding=(1, 0, 0)).eval()
    with torch.no_grad():
        out = core(torch.zeros(1, 2, 12, 9, 8))
    assert tuple(out.shape[1:]) == core.output_shape((2, 12, 9, 8))
    assert core.min_input_frames() == core.number_of_cut_frames() + 1


def _set_known_weights(core: SimpleCoreWrapper) -> None:
    """Delta spatial kernels with one input per output channel and all-ones Fourier coefficients."""
    with torch.no_grad():
        for layer in core.features:
            conv = layer.conv
            conv.weight_spatial.zero_()
            centre = conv.weight_spatial.shape[-1] // 2
            for out_channel in range(conv.weight_spatial.shape[0]):
                conv.weight_spatial[out_channel, out_channel % conv.weight_spatial.shape[1], 0, centre, centre] = 2.0
            conv.sin_weights.fill_(1.0)
            conv.cos_weights.fill_(1.0)


def test_regularizer_terms_hand_computed() -> None:
    core = _small_core(gamma_input=0.5, gamma_temporal=2.0, gamma_in_sparse=3.0, gamma_hidden=5.0)
    _set_known_weights(core)
    # Layer 0 (3 out, 2 in, 3x3 kernels, no padding): each non-zero map is a delta of 2 -> Laplace response 8 at
    # the centre only, so Σ Lap² / Σ W² = 3 * 64 / (3 * 4).
    spatial = 3 * 64 / (3 * 4 + EPS)
    assert core.spatial_laplace().item() == pytest.approx(spatial, rel=1e-6)
    # Every output channel uses one input channel -> 1 per output channel.
    assert core.group_sparsity().item() == pytest.approx(4.0, rel=1e-6)
    assert core.group_sparsity_0().item() == pytest.approx(3.0 + 4.0, rel=1e-6)
    # temporal_smoothing with all-ones coefficients: 2 * Σ_k λ_k² * I (summed over O, then / O).
    lam0, lam1 = np.linspace(0.1, 0.9, 2), np.linspace(0.1, 0.9, 1)
    temporal = 2 * (lam0**2).sum() * 2 + 2 * (lam1**2).sum() * 3
    assert core.temporal_smoothness().item() == pytest.approx(temporal, rel=1e-6)
    expected = 0.5 * spatial + 5.0 * 4.0 + 2.0 * temporal + 3.0 * 7.0
    assert core.regularizer().item() == pytest.approx(expected, rel=1e-6)


def test_zero_gammas_give_zero_regularizer_and_one_layer_has_no_hidden_sparsity() -> None:
    core = _small_core()
    assert core.regularizer().item() == 0.0
    single = _small_core(channels=[2, 3], temporal_kernel_sizes=[6], spatial_kernel_sizes=[3])
    assert single.group_sparsity().item() == 0.0


@pytest.mark.parametrize("name", sorted(ZOO_CORES))
def test_zoo_regularizers_are_finite_and_differentiable(name: str) -> None:
    core = SimpleCoreWrapper(**ZOO_CORES[name][0])
    reg = core.regularizer()
    assert reg.dim() == 0 and torch.isfinite(reg) and reg.item() > 0
    reg.backward()
    grads = [p.grad for p in core.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # Goldin's spatial penalty reaches its (time-independent) conv weights, unlike the reference.
    assert any(g.abs().sum() > 0 for g in grads)


def test_separable_temporal_smoothness_is_time_laplace_of_layer0() -> None:
    core = _small_core(convolution_type="separable", gamma_temporal=1.0)
    with torch.no_grad():
        core.features.layer0.conv.time_conv.weight.zero_()
        core.features.layer0.conv.time_conv.weight[:, :, 2] = 1.0  # delta in the middle of 6 taps
    # Each (out, in) trace is a delta: valid Laplace response [0, -1, 2, -1] -> 6 per trace, Σ w² = 1 per trace.
    assert core.temporal_smoothness().item() == pytest.approx(6.0 / (1.0 + EPS / 9), rel=1e-6)


# ---------------------------------------------------------------------------------------------- Core, DummyCore
class _SeedStyleCore(Core):
    """A user core written like the documentation example: only __init__ and forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, kernel_size=(5, 3, 3), padding=(2, 1, 1))
        self.norm = nn.BatchNorm3d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


def test_minimal_core_subclass_has_working_defaults() -> None:
    core = _SeedStyleCore()
    reg = core.regularizer()
    assert isinstance(reg, torch.Tensor) and reg.item() == 0.0
    assert core.number_of_cut_frames() == 0
    assert core.output_shape((2, 6, 5, 4)) == (4, 6, 5, 4)
    assert core.training and int(core.norm.num_batches_tracked) == 0
    with pytest.warns(UserWarning, match="no weight visualisation"):
        core.save_weight_visualizations("unused")


def test_core3d_initialize_gives_xavier_weights_and_zero_bias() -> None:
    class _Tiny(Core3d):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(2, 3, 3)

    tiny = _Tiny()
    nn.init.constant_(tiny.conv.bias, 5.0)
    tiny.initialize()
    assert torch.all(tiny.conv.bias == 0)
    assert not torch.all(tiny.conv.weight == tiny.conv.weight.flatten()[0])


def test_repr_lists_regularisation_weights() -> None:
    text = repr(_small_core(gamma_temporal=4.0))
    assert "gamma_temporal=4.0" in text and "<super" not in text


def test_dummy_core_cuts_frames() -> None:
    core = DummyCore(cut_first_n_frames=3, unused_option=1)
    assert list(core.state_dict()) == []
    x = torch.arange(2 * 1 * 6 * 2 * 2, dtype=torch.float32).view(2, 1, 6, 2, 2)
    torch.testing.assert_close(core(x, data_key="any"), x[:, :, 3:])
    assert core.output_shape((1, 6, 2, 2)) == (1, 3, 2, 2)
    assert core.regularizer().item() == 0
    with pytest.raises(InsufficientFramesError, match="at least 4"):
        core(x[:, :, :3])
    assert DummyCore()(x).shape == x.shape


# ------------------------------------------------------------------------------------------------- ConvGRUCore
GRU_CONFIG: dict[str, Any] = {
    "channels": [2, 6, 8],
    "temporal_kernel_sizes": [21, 11, 11],
    "spatial_kernel_sizes": [11, 5, 5],
    "gamma_input": 0.3,
    "gamma_in_sparse": 1.0,
    "gamma_temporal": 40.0,
    "gamma_hidden": 0.5,
    "use_projections": True,
    "use_gru": True,
    "gru_kwargs": {"rec_channels": 5, "input_kern": 4, "rec_kern": 4, "gamma_rec": 1},
}


def test_gru_core_shipped_config_with_even_gru_kernels_runs_forward_and_backward() -> None:
    core = ConvGRUCore(**GRU_CONFIG)
    x = torch.randn(2, 2, 33, 18, 16)
    out = core(x)
    assert out.shape == (2, 5, 3, 8, 6)
    assert tuple(out.shape[1:]) == core.output_shape((2, 33, 18, 16))
    assert core.outchannels == 5 and core.number_of_cut_frames() == 30
    (out.mean() + core.regularizer()).backward()
    assert all(torch.isfinite(p.grad).all() for p in core.parameters() if p.grad is not None)


def test_gru_core_keys_projection_and_layer_structure() -> None:
    core = ConvGRUCore(**{**GRU_CONFIG, "use_gru": False, "final_nonlinearity": False})
    keys = set(core.state_dict())
    assert {
        "_input_weights_regularizer_spatial.laplace.filter",
        "_input_weights_regularizer_temporal.laplace.filter",
        "features.projection.0._log_speed_default",
        "features.projection.0.conv.weight",
        "features.layer1.norm.running_var",
    } <= keys
    assert core.features.projection[0].conv.weight.shape == (6, 6, 1, 1, 1)
    assert list(core.features)[1] is core.features.projection  # projection sits right after layer 0
    # final_nonlinearity=False drops only the last layer's nonlinearity.
    assert hasattr(core.features.layer0, "nonlin") and not hasattr(core.features.layer1, "nonlin")
    assert core.outchannels == 8
    assert not any("gru" in k for k in keys)


def test_gru_core_pads_each_hidden_layer_with_its_own_kernel() -> None:
    core = ConvGRUCore(channels=[1, 2, 2, 2], temporal_kernel_sizes=3, spatial_kernel_sizes=[3, 5, 7])
    assert core.paddings == (0, (0, 2, 2), (0, 3, 3))
    assert core.output_shape((1, 10, 12, 12)) == (2, 4, 10, 10)
    with torch.no_grad():
        assert core.eval()(torch.zeros(1, 1, 10, 12, 12)).shape == (1, 2, 4, 10, 10)


def test_gru_core_batch_adaptation_shares_session_speeds() -> None:
    torch.manual_seed(0)
    core = ConvGRUCore(
        channels=[1, 3, 3],
        temporal_kernel_sizes=[9, 6],
        spatial_kernel_sizes=3,
        batch_adaptation=True,
        n_neurons_dict={"s1": 4, "s2": 5},
    ).eval()
    assert core.features.layer0.conv.log_speed_s1 is core.log_speed_s1
    assert core.features.layer1.conv.log_speed_s2 is core.log_speed_s2
    x = torch.randn(1, 1, 16, 7, 7)
    with torch.no_grad():
        core.log_speed_s2.fill_(0.5)
        torch.testing.assert_close(core(x, data_key="s1"), core(x))  # s1 speed is 0 = default
        assert not torch.allclose(core(x, data_key="s2"), core(x, data_key="s1"))
    with pytest.raises(DataFormatError, match="unknown session 'nope'"):
        core(x, data_key="nope")
    with pytest.raises(ValueError, match="n_neurons_dict"):
        ConvGRUCore(channels=[1, 3], batch_adaptation=True)


def test_gru_core_ignores_data_key_without_batch_adaptation_and_validates_gru_kwargs() -> None:
    core = ConvGRUCore(channels=[1, 2], temporal_kernel_sizes=3, spatial_kernel_sizes=3).eval()
    x = torch.randn(1, 1, 5, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(core(x, data_key="some_session"), core(x))
    with pytest.raises(ValueError, match="gru_kwargs"):
        ConvGRUCore(channels=[1, 2], use_gru=True)
    with pytest.raises(InsufficientFramesError, match="at least 3"):
        core(x[:, :, :2])


def test_gru_core_regularizer_terms() -> None:
    core = ConvGRUCore(channels=[1, 2, 2], temporal_kernel_sizes=6, spatial_kernel_sizes=3, gamma_hidden=1.0)
    with torch.no_grad():
        for module in (core.features.layer0, core.features.layer1):
            module.conv.weight_spatial.zero_()
            for out_channel in range(2):
                module.conv.weight_spatial[out_channel, 0, 0, 1, 1] = 1.0
    # Layer 0 is included (unlike SimpleCoreWrapper.group_sparsity): 2 layers x 2 output channels x 1.
    assert core.regularizer().item() == pytest.approx(4.0, rel=1e-6)
    other = ConvGRUCore(channels=[1, 2], temporal_kernel_sizes=3, spatial_kernel_sizes=3, convolution_type="full")
    assert other.regularizer().item() == 0.0


def test_gru_core_group_sparsity0_uses_full_space_time_kernel() -> None:
    core = ConvGRUCore(channels=[2, 3], temporal_kernel_sizes=6, spatial_kernel_sizes=3, gamma_in_sparse=1.0)
    with torch.no_grad():
        core.features.layer0.conv.weight_spatial[:, 1] = 0.0  # every output reads only input 0
        # Weights far above the 1e-8 epsilon of the formula, so it does not show in the value.
        core.features.layer0.conv.sin_weights.fill_(1.0)
        core.features.layer0.conv.cos_weights.fill_(1.0)
        core.features.layer0.conv.weight_spatial.mul_(100.0)
    # One input channel per output channel -> 1 each, whatever the temporal kernel is.
    assert core.group_sparsity0().item() == pytest.approx(3.0, rel=1e-5)
    core.regularizer().backward()
    assert core.features.layer0.conv.sin_weights.grad is not None


def test_conditioned_gru_core_adds_film_after_conv_layers() -> None:
    torch.manual_seed(0)
    core = ConditionedGRUCore(
        3, channels=[1, 4, 5], temporal_kernel_sizes=3, spatial_kernel_sizes=3, use_projections=True
    ).eval()
    film_keys = {k.split(".")[0] for k in core.state_dict() if k.startswith("film_")}
    assert film_keys == {"film_0", "film_2"}
    assert core.film_2.fc_gamma.out_features == 5
    x = torch.randn(2, 1, 6, 7, 7)
    with torch.no_grad():
        out = core(x)
        assert out.shape == (2, 5, 2, 5, 5)
        assert not torch.allclose(core(x, torch.full((2, 3), 3.0)), out)
    with pytest.raises(DataShapeError, match="conditioning"):
        core(x, torch.zeros(2, 4))
