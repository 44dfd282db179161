"""SingleCellSeparatedLNP: layout, arithmetic against an independent computation, regularisers, training."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from openretina.data_io.base_dataloader import DataPoint
from openretina.errors import DataShapeError
from openretina.models.linear_nonlinear import SingleCellSeparatedLNP

IN_SHAPE = (2, 8, 12, 10)  # channels, clip frames (temporal kernel length), height, width


def _expected_rate(model: SingleCellSeparatedLNP, patch: torch.Tensor, normalize: bool) -> torch.Tensor:
    """Σ_r Σ_τ t[r, τ] Σ_{c,i,j} s[r, c, i, j] x[b, c, t' + τ, i, j], then the softplus, by explicit sums."""
    spatial = model.space_conv.weight.detach()[:, :, 0]  # (rank, C, kh, kw)
    temporal = model.time_conv.weight.detach()[0, :, :, 0, 0]  # (rank, T)
    if normalize:
        spatial, temporal = spatial / spatial.norm(), temporal / temporal.norm()
    projected = torch.einsum("bctij,rcij->brt", patch, spatial)  # (batch, rank, time)
    length = temporal.shape[1]
    n_out = patch.shape[2] - length + 1
    drive = torch.stack(
        [torch.einsum("brt,rt->b", projected[:, :, t : t + length], temporal) for t in range(n_out)], dim=1
    )
    nonlinearity = model.nonlinearity
    return (nonlinearity.w * F.softplus(nonlinearity.a * drive + nonlinearity.b)).unsqueeze(-1)


@pytest.mark.parametrize("normalize", [True, False])
def test_forward_matches_explicit_sums(normalize: bool) -> None:
    torch.manual_seed(0)
    model = SingleCellSeparatedLNP(
        IN_SHAPE, rf_location=(5, 4), spat_kernel_size=(5, 3), rank=2, normalize_weights=normalize
    )
    stimulus = torch.randn(3, 2, 20, 12, 10)
    with torch.no_grad():
        output = model(stimulus)
    patch = stimulus[..., 3:8, 3:6]  # rows 5 - 2 ... 5 + 2, columns 4 - 1 ... 4 + 1
    assert output.shape == (3, 20 - 8 + 1, 1)
    torch.testing.assert_close(output, _expected_rate(model, patch, normalize), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(model(patch), output)  # an already cropped patch is accepted


def test_forward_does_not_modify_weights() -> None:
    model = SingleCellSeparatedLNP(IN_SHAPE, spat_kernel_size=(5, 5), normalize_weights=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(torch.randn(1, 2, 9, 12, 10))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_state_dict_layout_matches_reference() -> None:
    model = SingleCellSeparatedLNP(IN_SHAPE, spat_kernel_size=(5, 3), rank=2)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {
        "_smooth_reg_fn_spat.laplace.filter": (1, 1, 3, 3),
        "_smooth_reg_fn_temp.laplace.filter": (1, 1, 3),
        "nonlinearity.b": (),
        "nonlinearity.w": (),
        "space_conv.weight": (2, 2, 1, 5, 3),
        "time_conv.weight": (1, 2, 8, 1, 1),
    }


def test_crop_window_stays_inside_the_frame() -> None:
    model = SingleCellSeparatedLNP(IN_SHAPE, rf_location=(0, 9), spat_kernel_size=(5, 3))
    frame = torch.arange(12 * 10, dtype=torch.float32).reshape(1, 1, 1, 12, 10)
    patch = model.crop_input(frame)
    assert patch.shape[-2:] == (5, 3)
    assert torch.equal(patch, frame[..., 0:5, 7:10])


def test_wrong_frame_size_is_rejected() -> None:
    model = SingleCellSeparatedLNP(IN_SHAPE, spat_kernel_size=(5, 5))
    with pytest.raises(DataShapeError, match="spat_kernel_size"):
        model(torch.randn(1, 2, 9, 7, 7))
    with pytest.raises(DataShapeError, match="exceeds"):
        SingleCellSeparatedLNP(IN_SHAPE, spat_kernel_size=(13, 5))


def test_regularizer_combines_smoothness_and_sparsity() -> None:
    model = SingleCellSeparatedLNP(IN_SHAPE, spat_kernel_size=(5, 5), sparse_weight=0.5)
    spatial, temporal = model.space_conv.weight, model.time_conv.weight
    expected_l1 = spatial.abs().mean() + temporal.abs().mean()
    torch.testing.assert_close(model.regularizer(), 0.5 * expected_l1)

    smooth = SingleCellSeparatedLNP(IN_SHAPE, spat_kernel_size=(5, 5), smooth_weight_spat=2.0, smooth_weight_temp=3.0)
    penalty = smooth.regularizer()
    assert penalty.item() > 0
    penalty.backward()
    assert smooth.space_conv.weight.grad is not None and smooth.time_conv.weight.grad is not None


def test_unknown_regularizer_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown smoothness regularizer 'NoSuch'"):
        SingleCellSeparatedLNP(IN_SHAPE, spat_kernel_size=(5, 5), smooth_regularizer_spat="NoSuch")


def test_checkpoint_reloads_without_arguments(tmp_path: Path) -> None:
    model = SingleCellSeparatedLNP(IN_SHAPE, spat_kernel_size=(5, 3), rank=2, nonlinearity="softplus")
    path = tmp_path / "lnp.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    reloaded = SingleCellSeparatedLNP.load_from_checkpoint(path)
    stimulus = torch.randn(2, 2, 10, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(stimulus), model(stimulus))


def test_short_fit_logs_reference_metric_names() -> None:
    torch.manual_seed(0)
    model = SingleCellSeparatedLNP(IN_SHAPE, spat_kernel_size=(5, 5), sparse_weight=0.1)
    batches = [("cell", DataPoint(torch.randn(4, 2, 12, 12, 10), torch.rand(4, 12, 1))) for _ in range(2)]
    trainer = lightning.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        trainer.fit(model, DataLoader(batches, batch_size=None), DataLoader(batches[:1], batch_size=None))
    assert {
        "regularization_loss_core",
        "train_total_loss",
        "train_loss",
        "train_evaluation_loss",
        "val_loss",
        "val_regularization_loss",
        "val_total_loss",
        "val_evaluation_loss",
    } <= set(trainer.callback_metrics)
