"""Single-neuron linear-nonlinear-Poisson model with a rank-``r`` space-time separable filter."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import lightning
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn

from openretina.errors import DataShapeError
from openretina.models.optimizers import configure_optimizer_and_scheduler, metric_mode
from openretina.modules.layers import regularizers
from openretina.modules.losses import CorrelationLoss3d, PoissonLoss3d
from openretina.modules.nonlinearities import ParametrizedSoftplus

__all__ = ["SingleCellSeparatedLNP"]


def _crop_window(centre: int, kernel: int, size: int) -> slice:
    """Window of exactly ``kernel`` pixels around ``centre``, shifted inwards at the image borders."""
    start = min(max(centre - kernel // 2, 0), size - kernel)
    return slice(start, start + kernel)


def _build_regularizer(name: str, padding: int | None, gaussian_kernel: int | Sequence[int]) -> nn.Module:
    """Smoothness regulariser class ``name`` from :mod:`openretina.modules.layers.regularizers`."""
    regularizer_class = getattr(regularizers, name, None)
    if not (inspect.isclass(regularizer_class) and issubclass(regularizer_class, nn.Module)):
        raise ValueError(
            f"SingleCellSeparatedLNP: unknown smoothness regularizer {name!r}; use one of LaplaceL2norm, "
            "GaussianLaplaceL2, FlatLaplaceL23dnorm, TimeLaplaceL23dnorm."
        )
    if regularizer_class is regularizers.GaussianLaplaceL2:
        return regularizer_class(kernel=gaussian_kernel, padding=padding)
    return regularizer_class(padding=padding)


class SingleCellSeparatedLNP(lightning.LightningModule):
    """Linear-nonlinear-Poisson model of one neuron: spatial filters, temporal filters, output nonlinearity.

    The linear stage is a sum of ``rank`` space-time separable filters: ``space_conv`` (rank spatial filters of
    ``spat_kernel_size`` over the channels) followed by ``time_conv`` (one temporal filter per rank spanning
    all ``T`` frames of ``in_shape``).

    Input: (batch, channels, time, height, width), either the full frame ``in_shape[2:]`` (cropped around
    ``rf_location`` here) or an already cropped ``spat_kernel_size`` patch.
    Output: (batch, time - T + 1, 1) predicted firing rate.

    Compared with the reference: with ``normalize_weights`` the filters are divided by their L2 norm
    functionally in ``forward`` (the stored weights are never modified in place); the crop window always has
    the kernel's size, also near the image border; hyper-parameters are saved, so
    ``load_from_checkpoint`` works.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        rf_location: Sequence[int] | None = None,
        spat_kernel_size: Sequence[int] = (15, 15),
        learning_rate: float = 1e-3,
        rank: int = 1,
        smooth_weight_spat: float = 0.0,
        smooth_weight_temp: float = 0.0,
        sparse_weight: float = 0.0,
        smooth_regularizer_spat: str = "LaplaceL2norm",
        smooth_regularizer_temp: str = "TimeLaplaceL23dnorm",
        smooth_regularizer: str = "LaplaceL2norm",
        laplace_padding: int | None = None,
        nonlinearity: str = "parametrized_softplus",
        normalize_weights: bool = True,
        loss: nn.Module | None = None,
        evaluation_loss: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["loss", "evaluation_loss"], logger=False)
        channels, time_steps, height, width = (int(v) for v in in_shape)
        kernel_h, kernel_w = (int(v) for v in spat_kernel_size)
        if kernel_h > height or kernel_w > width:
            raise DataShapeError(
                f"SingleCellSeparatedLNP: spat_kernel_size {(kernel_h, kernel_w)} exceeds the frame size "
                f"{(height, width)} of in_shape {tuple(in_shape)}. Use a kernel no larger than the frame."
            )
        self.in_shape = (channels, time_steps, height, width)
        self.spat_kernel_size = (kernel_h, kernel_w)
        self.rf_location = tuple(rf_location) if rf_location is not None else (height // 2, width // 2)
        self.crop = self.spat_kernel_size != (height, width)
        self.learning_rate = learning_rate
        self.rank = rank
        self.smooth_weight_spat = smooth_weight_spat
        self.smooth_weight_temp = smooth_weight_temp
        self.sparse_weight = sparse_weight
        self.normalize_weights = normalize_weights

        self._smooth_reg_fn_spat = _build_regularizer(smooth_regularizer_spat, laplace_padding, self.spat_kernel_size)
        self._smooth_reg_fn_temp = _build_regularizer(smooth_regularizer_temp, laplace_padding, time_steps)
        self.nonlinearity: Callable[[torch.Tensor], torch.Tensor]
        if nonlinearity == "parametrized_softplus":
            self.nonlinearity = ParametrizedSoftplus()
        else:
            self.nonlinearity = getattr(F, nonlinearity)
        self.space_conv = nn.Conv3d(channels, rank, (1, kernel_h, kernel_w), bias=False)
        self.time_conv = nn.Conv3d(rank, 1, (time_steps, 1, 1), bias=False)
        nn.init.xavier_normal_(self.space_conv.weight)
        nn.init.xavier_normal_(self.time_conv.weight)
        self.loss = loss if loss is not None else PoissonLoss3d()
        self.evaluation_loss = (
            evaluation_loss if evaluation_loss is not None else CorrelationLoss3d(avg=True, negate=False)
        )

    def crop_input(self, x: torch.Tensor) -> torch.Tensor:
        """Cut the ``spat_kernel_size`` patch around ``rf_location`` out of a full-frame stimulus.

        Input: (batch, channels, time, height, width). Output: (batch, channels, time, kernel_h, kernel_w).
        """
        rows = _crop_window(self.rf_location[0], self.spat_kernel_size[0], x.shape[-2])
        cols = _crop_window(self.rf_location[1], self.spat_kernel_size[1], x.shape[-1])
        return x[..., rows, cols]

    def _filters(self) -> tuple[torch.Tensor, torch.Tensor]:
        space, time = self.space_conv.weight, self.time_conv.weight
        if self.normalize_weights:
            space, time = space / space.norm(), time / time.norm()
        return space, time

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        """Predicted rate. Input: (batch, channels, time, H, W). Output: (batch, time - T + 1, 1)."""
        if x.dim() != 5 or x.shape[1] != self.in_shape[0]:
            raise DataShapeError(
                f"SingleCellSeparatedLNP: stimulus has shape {tuple(x.shape)}; expected (batch, {self.in_shape[0]}, "
                "time, height, width)."
            )
        spatial_size = tuple(x.shape[-2:])
        if self.crop and spatial_size == self.in_shape[2:]:
            x = self.crop_input(x)
        elif spatial_size != self.spat_kernel_size:
            raise DataShapeError(
                f"SingleCellSeparatedLNP: stimulus frames are {spatial_size}; expected the full frame "
                f"{self.in_shape[2:]} or a crop of spat_kernel_size {self.spat_kernel_size}."
            )
        space, time = self._filters()
        output = F.conv3d(F.conv3d(x, space), time)  # (batch, 1, time_out, 1, 1)
        return self.nonlinearity(output).flatten(start_dim=1).unsqueeze(-1)

    def weights_l1(self, average: bool = True) -> torch.Tensor:
        """L1 norm of the spatial plus the temporal weights (means, or sums with ``average=False``)."""
        aggregate = torch.mean if average else torch.sum
        return aggregate(self.space_conv.weight.abs()) + aggregate(self.time_conv.weight.abs())

    def laplace(self) -> torch.Tensor:
        """Weighted spatial plus temporal smoothness penalty."""
        spatial = self._smooth_reg_fn_spat(self.space_conv.weight.squeeze(2))
        temporal = self._smooth_reg_fn_temp(self.time_conv.weight)
        return self.smooth_weight_spat * spatial + self.smooth_weight_temp * temporal

    def regularizer(self) -> torch.Tensor:
        """Smoothness plus ``sparse_weight`` times the L1 penalty."""
        return self.laplace() + self.sparse_weight * self.weights_l1()

    def training_step(self, batch: tuple[str, Any], batch_idx: int) -> torch.Tensor:
        """Loss plus penalty on one ``(session_id, DataPoint)`` batch; targets (batch, time, 1)."""
        _, (inputs, targets) = batch
        output = self.forward(inputs)
        loss = self.loss(output, targets)
        regularization = self.regularizer()
        total_loss = loss + regularization
        log = {"on_step": False, "on_epoch": True, "batch_size": inputs.shape[0]}
        self.log("regularization_loss_core", regularization, **log)
        self.log("train_total_loss", total_loss, **log)
        self.log("train_loss", loss, **log)
        self.log("train_evaluation_loss", self.evaluation_loss(output, targets), prog_bar=True, **log)
        return total_loss

    def validation_step(self, batch: tuple[str, Any], batch_idx: int) -> torch.Tensor:
        """Per-element loss, penalty and evaluation metric on one validation batch."""
        _, (inputs, targets) = batch
        output = self.forward(inputs)
        loss = self.loss(output, targets) / output.numel()
        regularization = self.regularizer()
        log = {"on_step": False, "on_epoch": True, "batch_size": inputs.shape[0]}
        self.log("val_loss", loss, prog_bar=True, **log)
        self.log("val_regularization_loss", regularization, **log)
        self.log("val_total_loss", loss + regularization, **log)
        self.log("val_evaluation_loss", self.evaluation_loss(output, targets), prog_bar=True, **log)
        return loss

    def test_step(self, batch: tuple[str, Any], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Per-element loss and evaluation metric on one test batch, logged under the metrics' class names."""
        _, (inputs, targets) = batch
        output = self.forward(inputs)
        loss = self.loss(output, targets) / output.numel()
        evaluation = self.evaluation_loss(output, targets)
        self.log_dict(
            {type(self.loss).__name__: loss, type(self.evaluation_loss).__name__: evaluation},
            batch_size=inputs.shape[0],
        )
        return loss

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        """AdamW plus ReduceLROnPlateau on ``val_evaluation_loss``."""
        return configure_optimizer_and_scheduler(
            self.parameters(),
            learning_rate=self.learning_rate,
            monitor="val_evaluation_loss",
            mode=metric_mode(self.evaluation_loss),
        )
