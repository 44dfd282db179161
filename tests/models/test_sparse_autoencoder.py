"""Sparse autoencoder over model responses."""

from __future__ import annotations

import warnings

import lightning
import pytest
import torch
from torch.utils.data import DataLoader

from openretina.errors import DataShapeError
from openretina.models.sparse_autoencoder import ActivationsDataset, Autoencoder, AutoencoderWithModel, SparsityMSELoss


def test_sparsity_mse_loss_by_hand() -> None:
    x = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    x_hat = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    z = torch.tensor([[0.5, 0.0, -1.0], [2.0, 0.0, 0.0]])
    total, mse, sparsity = SparsityMSELoss(sparsity_factor=0.1)(x, z, x_hat)
    assert mse.item() == pytest.approx((1.0 + (1.0 + 4.0)) / 2)
    assert sparsity.item() == pytest.approx((1.5 + 2.0) / 2)
    assert total.item() == pytest.approx(3.0 + 0.1 * 1.75)


def test_activations_dataset_items() -> None:
    dataset = ActivationsDataset([torch.ones(4), torch.zeros(4)])
    assert len(dataset) == 2
    activation, target = dataset[0]
    assert torch.equal(activation, torch.ones(4))
    assert torch.equal(target, torch.zeros(4))


def test_encode_decode_and_state_layout() -> None:
    model = Autoencoder(input_dim=3, hidden_dim=5, loss=SparsityMSELoss(0.0))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        "bias": (3,),
        "encoder.weight": (5, 3),
        "encoder.bias": (5,),
        "decoder.weight": (3, 5),
    }
    with torch.no_grad():
        model.bias.copy_(torch.tensor([1.0, 0.0, -1.0]))
    x = torch.randn(7, 3)
    z = model.encode(x)
    expected = torch.relu((x - model.bias) @ model.encoder.weight.T + model.encoder.bias)
    torch.testing.assert_close(z, expected)
    torch.testing.assert_close(model.decode(z), z @ model.decoder.weight.T + model.bias)


def test_training_keeps_decoder_columns_at_unit_norm_and_reduces_loss() -> None:
    torch.manual_seed(0)
    dictionary = torch.randn(8, 6)
    codes = torch.relu(torch.randn(256, 6))
    data = ActivationsDataset(list(codes @ dictionary.T))
    model = Autoencoder(input_dim=8, hidden_dim=12, loss=SparsityMSELoss(1e-3), learning_rate=0.01)
    x = torch.stack(data.activations)
    with torch.no_grad():
        loss_before = model.loss(x, model.encode(x), model.decode(model.encode(x)))[0].item()
    trainer = lightning.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        trainer.fit(model, DataLoader(data, batch_size=32, shuffle=True))
    model.normalize_decoder()
    torch.testing.assert_close(model.decoder.weight.norm(dim=0), torch.ones(12))
    with torch.no_grad():
        loss_after = model.loss(x, model.encode(x), model.decode(model.encode(x)))[0].item()
    assert loss_after < 0.5 * loss_before
    for name in (
        "mse_loss",
        "sparsity_loss",
        "decoder_norm_diff",
        "train_loss",
        "active_neurons",
        "fraction_inactive_neurons",
        "fraction_barely_active_neurons",
        "mean_hidden_activations",
    ):
        assert name in trainer.callback_metrics, name


def test_gradient_parallel_to_decoder_columns_is_removed() -> None:
    model = Autoencoder(input_dim=4, hidden_dim=3, loss=SparsityMSELoss(0.0))
    model.normalize_decoder()
    model.decoder.weight.grad = torch.randn(4, 3)
    model.on_after_backward()
    parallel = (model.decoder.weight.grad * model.decoder.weight.detach()).sum(dim=0)
    torch.testing.assert_close(parallel, torch.zeros(3), atol=1e-6, rtol=0)


def test_autoencoder_with_model_concatenates_sessions() -> None:
    class TwoSessions(torch.nn.Module):
        class _Readout:
            @staticmethod
            def readout_keys() -> list[str]:
                return ["a", "b"]

        readout = _Readout()

        def forward(self, x: torch.Tensor, data_key: str) -> torch.Tensor:
            n = 2 if data_key == "a" else 3
            return x.mean(dim=(1, 3, 4))[..., None].expand(-1, -1, n) * (1.0 if data_key == "a" else -1.0)

    autoencoder = Autoencoder(input_dim=5, hidden_dim=4, loss=SparsityMSELoss(0.0))
    stimulus = torch.randn(2, 1, 6, 3, 3)
    code = AutoencoderWithModel(TwoSessions(), autoencoder)(stimulus)
    mean = stimulus.mean(dim=(1, 3, 4))[..., None]
    responses = torch.cat([mean.expand(-1, -1, 2), -mean.expand(-1, -1, 3)], dim=-1)
    torch.testing.assert_close(code, autoencoder.encode(responses))

    with pytest.raises(DataShapeError, match="input_dim=6"):
        AutoencoderWithModel(TwoSessions(), Autoencoder(6, 4, SparsityMSELoss(0.0)))(stimulus)
