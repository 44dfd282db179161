"""The linear temporal filter bank of the LN baseline: shapes, linearity, causality, penalty, config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from openretina.cli.hydra_app import CONFIG_DIR
from openretina.errors import DataShapeError, InsufficientFramesError
from openretina.hub.pretrained import load_pretrained, save_pretrained
from openretina.models.core_readout import UnifiedCoreReadout
from openretina.modules.core.linear_temporal import LinearTemporalCore


def _core(**kwargs: object) -> LinearTemporalCore:
    torch.manual_seed(0)
    settings: dict[str, object] = {"channels": (2, 3), "temporal_kernel_size": 7} | kwargs
    return LinearTemporalCore(**settings)  # type: ignore[arg-type]


def test_shapes_and_state_dict() -> None:
    core = _core()
    out = core(torch.randn(4, 2, 20, 5, 6))
    assert out.shape == (4, 3, 14, 5, 6) == (4, *core.output_shape((2, 20, 5, 6)))
    assert core.number_of_cut_frames() == 6 and core.min_input_frames() == 7
    assert list(core.state_dict()) == ["filters.weight"]  # the penalty's Laplacian is not saved
    assert core.temporal_filters().shape == (3, 2, 7)


def test_is_linear_and_causal_with_no_spatial_mixing() -> None:
    core = _core()
    x, y = torch.randn(2, 2, 2, 20, 5, 6, dtype=torch.float64)
    core = core.double()
    assert torch.allclose(core(2.0 * x - 3.0 * y), 2.0 * core(x) - 3.0 * core(y))
    changed = x.clone()
    changed[:, :, 15] += 1.0  # a later frame cannot change earlier outputs (output t reads frames t..t+6)
    changed[:, :, :, 0, 0] += 1.0  # one pixel cannot change its neighbours
    difference = (core(changed) - core(x)).abs().sum(dim=(0, 1))  # (time, height, width)
    assert difference[:9, 1:, :].max() == 0 and difference[:9, :, 1:].max() == 0
    assert difference[9:].max() > 0 and difference[:, 0, 0].max() > 0


def test_output_equals_the_filters_applied_by_hand() -> None:
    core = _core()
    x = torch.randn(1, 2, 12, 1, 1)
    filters = core.temporal_filters()  # (K, C, T), oldest frame first
    expected = torch.stack([(x[0, :, t : t + 7, 0, 0] * filters).sum(dim=(1, 2)) for t in range(6)], dim=1)
    assert torch.allclose(core(x)[0, :, :, 0, 0], expected, atol=1e-6)


def test_temporal_penalty_is_zero_for_straight_filters_and_scales_with_gamma() -> None:
    core = _core(gamma_temporal=2.0)
    with torch.no_grad():
        core.filters.weight.copy_(torch.linspace(-1, 1, 7).expand_as(core.filters.weight[..., 0, 0])[..., None, None])
    assert core.regularizer().item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        core.filters.weight.normal_()
    rough = core.regularizer().item()
    core.gamma_temporal = 4.0
    assert rough > 0 and core.regularizer().item() == pytest.approx(2 * rough)
    assert _core(temporal_kernel_size=2, gamma_temporal=1.0).regularizer().item() == 0.0


def test_bad_settings_and_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="hidden_channels to one value"):
        LinearTemporalCore(channels=(2, 3, 4))
    with pytest.raises(ValueError, match="temporal_kernel_size"):
        LinearTemporalCore(channels=(2, 3), temporal_kernel_size=0)
    with pytest.raises(DataShapeError, match="expected 2 stimulus channels"):
        _core()(torch.randn(1, 3, 20, 4, 4))
    with pytest.raises(InsufficientFramesError, match="at least 7"):
        _core()(torch.randn(1, 2, 6, 4, 4))


def test_weight_plot_is_written(tmp_path: Path) -> None:
    _core().save_weight_visualizations(str(tmp_path), "png", "_final")
    assert (tmp_path / "temporal_filters_final.png").stat().st_size > 0


def test_ln_baseline_config_builds_an_ln_model_that_saves_and_loads(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="synthetic_lnp")
    model_cfg = cfg.model
    model = UnifiedCoreReadout(
        in_shape=(2, 50, 18, 16),
        n_neurons_dict={"s": 5},
        hidden_channels=model_cfg.hidden_channels,
        core=model_cfg.core,
        readout=model_cfg.readout,
    ).eval()
    assert isinstance(model.core, LinearTemporalCore) and model.core.n_filters == 4
    stimulus = torch.randn(2, 2, 50, 18, 16)
    assert model(stimulus, data_key="s").shape == (2, 20, 5)
    loaded = load_pretrained(save_pretrained(model, tmp_path / "ln"))
    assert isinstance(loaded.core, LinearTemporalCore)
    assert torch.equal(loaded(stimulus, data_key="s"), model(stimulus, data_key="s"))
