"""Sparse autoencoder over a trained model's neuron activations (dictionary learning on model responses)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from openretina.errors import DataShapeError

__all__ = ["ActivationsDataset", "Autoencoder", "AutoencoderWithModel", "SparsityMSELoss"]

# Hidden units whose largest activation over an epoch stays at or below these are reported as (barely) inactive.
_INACTIVE_THRESHOLD = 0.0
_BARELY_ACTIVE_THRESHOLD = 0.1


class SparsityMSELoss:
    """Reconstruction error plus ``sparsity_factor`` times the L1 norm of the code.

    Both terms are summed over the last axis and averaged over all other (example) axes.
    """

    def __init__(self, sparsity_factor: float) -> None:
        self.sparsity_factor = sparsity_factor

    @staticmethod
    def mse_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Mean over examples of the summed squared reconstruction error. Input: (..., features)."""
        return (x - x_hat).pow(2).sum(dim=-1).mean()

    @staticmethod
    def sparsity_loss(z: torch.Tensor) -> torch.Tensor:
        """Mean over examples of the code's L1 norm. Input: (..., hidden)."""
        return z.abs().sum(dim=-1).mean()

    def forward(
        self, x: torch.Tensor, z: torch.Tensor, x_hat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(total, mse, sparsity)`` for input ``x``, code ``z`` and reconstruction ``x_hat``."""
        mse = self.mse_loss(x, x_hat)
        sparsity = self.sparsity_loss(z)
        return mse + self.sparsity_factor * sparsity, mse, sparsity

    __call__ = forward


class ActivationsDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Dataset of activation vectors; each item is ``(activation, zeros)`` (the target is unused).

    Input: a list of tensors ``(features,)`` (or any shape whose last axis is the feature axis).
    """

    def __init__(self, activations: Sequence[torch.Tensor]) -> None:
        self.activations = list(activations)

    def __len__(self) -> int:
        return len(self.activations)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        activation = self.activations[idx]
        return activation, torch.zeros(activation.shape[-1], dtype=activation.dtype)


class Autoencoder(lightning.LightningModule):
    """One-hidden-layer sparse autoencoder with unit-norm decoder columns.

    ``encode(x) = relu(encoder(x - bias))`` and ``decode(z) = decoder(z) + bias``, where ``bias`` (input_dim,)
    is shared between centring and reconstruction. Before each training step the decoder's columns (one per
    hidden unit) are renormalised to unit length, and the gradient component along each column is removed,
    so the optimiser moves on the unit sphere and sparsity cannot be gamed by shrinking the code.

    Input: (..., input_dim). Output of ``forward``: (..., hidden_dim) code.
    ``unit_norm_loss_factor`` is accepted for checkpoint compatibility and unused (the norm is a constraint).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        loss: SparsityMSELoss,
        learning_rate: float = 0.0005,
        unit_norm_loss_factor: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.bias = nn.Parameter(torch.zeros(input_dim))
        self.encoder = nn.Linear(input_dim, hidden_dim, bias=True)
        self.decoder = nn.Linear(hidden_dim, input_dim, bias=False)
        self.loss = loss
        self.learning_rate = learning_rate
        self._max_hidden_activation: torch.Tensor | None = None
        self._sum_hidden_activation: torch.Tensor | None = None
        self._n_examples = 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Non-negative code. Input: (..., input_dim). Output: (..., hidden_dim)."""
        return F.relu(self.encoder(x - self.bias))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction. Input: (..., hidden_dim). Output: (..., input_dim)."""
        return self.decoder(z) + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The code of ``x``; see :meth:`encode`."""
        return self.encode(x)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Scale every decoder column (the weight's dim 0, one column per hidden unit) to unit L2 norm."""
        weight = self.decoder.weight
        weight.div_(weight.norm(dim=0, keepdim=True).clamp_min(1e-12))

    def decoder_norm_diff(self) -> torch.Tensor:
        """``Σ |1 - ‖column‖|`` over decoder columns: how far the decoder is from unit norm."""
        return (1 - self.decoder.weight.norm(dim=0)).abs().sum()

    def training_step(self, batch: tuple[torch.Tensor, Any], batch_idx: int) -> torch.Tensor:
        """Reconstruct one batch of activations (batch, input_dim); logs the loss terms and mean L0."""
        x, _ = batch
        self.normalize_decoder()
        z = self.encode(x)
        total, mse, sparsity = self.loss(x, z, self.decode(z))
        self._track_hidden_activations(z.detach())
        self.log("mse_loss", mse)
        self.log("sparsity_loss", sparsity)
        self.log("decoder_norm_diff", self.decoder_norm_diff())
        self.log("train_loss", total)
        self.log("active_neurons", (z > 0).float().sum(dim=-1).mean())
        return total

    def on_after_backward(self) -> None:
        """Remove the gradient component parallel to each (unit-norm) decoder column."""
        grad = self.decoder.weight.grad
        if grad is None:
            return
        weight = self.decoder.weight.detach()
        grad.sub_(weight * (grad * weight).sum(dim=0, keepdim=True))

    def _track_hidden_activations(self, z: torch.Tensor) -> None:
        flat = z.reshape(-1, z.shape[-1])
        batch_max, batch_sum = flat.max(dim=0).values, flat.sum(dim=0)
        if self._max_hidden_activation is None or self._sum_hidden_activation is None:
            self._max_hidden_activation, self._sum_hidden_activation = batch_max, batch_sum
        else:
            self._max_hidden_activation = torch.maximum(self._max_hidden_activation, batch_max)
            self._sum_hidden_activation = self._sum_hidden_activation + batch_sum
        self._n_examples += flat.shape[0]

    def on_train_epoch_end(self) -> None:
        """Log mean hidden activation and the fractions of inactive / barely active hidden units."""
        if self._max_hidden_activation is None or self._sum_hidden_activation is None:
            return
        maxima = self._max_hidden_activation
        self.log("mean_hidden_activations", (self._sum_hidden_activation / self._n_examples).mean())
        self.log("fraction_inactive_neurons", (maxima <= _INACTIVE_THRESHOLD).float().mean())
        self.log("fraction_barely_active_neurons", (maxima <= _BARELY_ACTIVE_THRESHOLD).float().mean())
        self._max_hidden_activation = self._sum_hidden_activation = None
        self._n_examples = 0

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam with ``learning_rate``."""
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


class AutoencoderWithModel(nn.Module):
    """Code of a sparse autoencoder applied to all neurons of a core-readout model.

    Input: (batch, channels, time, height, width) stimulus. Output: (batch, time_out, hidden_dim) code of the
    model's responses, all sessions concatenated along the neuron axis in ``readout_keys()`` order.
    """

    model: Any  # a core-readout model: forward(x, data_key) and readout.readout_keys()

    def __init__(self, model: nn.Module, autoencoder: Autoencoder) -> None:
        super().__init__()
        self.model = model
        self.autoencoder = autoencoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the model for every session, concatenate the neurons, and encode."""
        responses = torch.cat([self.model(x, key) for key in self.model.readout.readout_keys()], dim=-1)
        expected = self.autoencoder.encoder.in_features
        if responses.shape[-1] != expected:
            raise DataShapeError(
                f"AutoencoderWithModel: the model predicts {responses.shape[-1]} neurons in total but the "
                f"autoencoder expects input_dim={expected}. Train the autoencoder on this model's responses."
            )
        return self.autoencoder.encode(responses)
