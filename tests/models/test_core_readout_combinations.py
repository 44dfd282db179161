"""Every core x readout pairing the reference configs use builds through UnifiedCoreReadout and trains.

Cores and readouts are given as ``_target_`` configs, exactly as the Hydra model configs give them.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest
import torch

from openretina.models import UnifiedCoreReadout

from .conftest import TINY_SIMPLE_CORE

IN_SHAPE = (2, 12, 10, 8)  # channels, time, height, width
N_NEURONS = {"session_x": 4, "session_y": 6}
SIMPLE_CORE = TINY_SIMPLE_CORE
GAMMAS = ("gamma_input", "gamma_hidden", "gamma_in_sparse", "gamma_temporal")
# (core config, frames the core consumes)
CORES: dict[str, tuple[dict[str, Any], int]] = {
    "simple_custom_separable": ({**SIMPLE_CORE, "convolution_type": "custom_separable"}, 4 + 2),
    "simple_separable": ({**SIMPLE_CORE, "convolution_type": "separable"}, 4 + 2),
    "simple_full": (  # a full 3-D kernel has no separate spatial kernel to regularise
        {**SIMPLE_CORE, "convolution_type": "full", **dict.fromkeys(GAMMAS, 0.0)},
        4 + 2,
    ),
    "simple_time_independent": (
        {**SIMPLE_CORE, "convolution_type": "time_independent", "gamma_temporal": 0.0},
        0,
    ),
    "gru_projections": (
        {
            "_target_": "openretina.modules.core.gru_core.ConvGRUCore",
            "temporal_kernel_sizes": [5, 3],
            "spatial_kernel_sizes": [3, 3],
            "gamma_input": 0.3,
            "gamma_in_sparse": 1.0,
            "gamma_temporal": 40.0,
            "use_projections": True,
            "use_gru": False,
        },
        4 + 2,
    ),
    "dummy": ({"_target_": "openretina.modules.core.base_core.DummyCore", "cut_first_n_frames": 3}, 3),
}
READOUTS: dict[str, dict[str, Any]] = {
    "gaussian_mask": {
        "_target_": "openretina.modules.readout.multi_readout.MultiGaussianMaskReadout",
        "scale": True,
        "bias": True,
        "gaussian_mean_scale": 6.0,
        "gaussian_var_scale": 4.0,
        "positive": True,
    },
    "factorized": {
        "_target_": "openretina.modules.readout.multi_readout.MultiFactorizedReadout",
        "mask_l1_reg": 5.0,
        "weights_l1_reg": 5.0,
        "laplace_mask_reg": 1.0,
        "readout_bias": True,
        "init_scales": [[0.0, 0.15], [0.0, 0.15]],
    },
    "sampled_gaussian": {
        "_target_": "openretina.modules.readout.multi_readout.MultiSampledGaussianReadout",
        "bias": True,
        "init_mu_range": 0.1,
        "init_sigma_range": 0.15,
        "gauss_type": "full",
        "gamma": 0.4,
    },
    "lnp": {
        "_target_": "openretina.modules.readout.multi_readout.MultipleLNPReadout",
        "nonlinearity": "softplus",
        "smooth_weight": 1.0,
        "sparse_weight": 1.0,
        "bias": True,
    },
}


@pytest.mark.parametrize("readout_name", sorted(READOUTS))
@pytest.mark.parametrize("core_name", sorted(CORES))
def test_core_readout_pair_builds_runs_and_backpropagates(core_name: str, readout_name: str) -> None:
    core_config, cut_frames = CORES[core_name]
    hidden_channels = None if core_name == "dummy" else (4, 4)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # readout bias without mean activity, cut-frame notices
        model = UnifiedCoreReadout(
            in_shape=IN_SHAPE,
            n_neurons_dict=N_NEURONS,
            core=copy.deepcopy(core_config),
            readout=copy.deepcopy(READOUTS[readout_name]),
            hidden_channels=hidden_channels,
            data_info={"input_shape": (2, 10, 8)},
        )
    stimulus = torch.randn(3, *IN_SHAPE)
    output = model(stimulus, data_key="session_y")
    assert output.shape == (3, IN_SHAPE[1] - cut_frames, N_NEURONS["session_y"])
    assert torch.isfinite(output).all()
    assert model.number_of_cut_frames() == cut_frames
    output.sum().backward()
    readout_grads = [p.grad for p in model.readout["session_y"].parameters() if p.requires_grad]
    assert readout_grads and all(g is not None and torch.isfinite(g).all() for g in readout_grads)

    model.zero_grad()
    penalty = model.core.regularizer() + model.readout.regularizer("session_y")
    assert torch.isfinite(torch.as_tensor(penalty))
    assert isinstance(penalty, torch.Tensor) and penalty.requires_grad
    penalty.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
