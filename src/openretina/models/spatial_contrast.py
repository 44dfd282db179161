"""Spatial-contrast (SC) models (Sridhar et al. 2025): luminance and local contrast inside fixed STA filters.

A neuron's spike-triggered average (STA) gives a fixed spatial filter ``sf`` and temporal filter ``tf``. The
stimulus is filtered in time per pixel (``f``), then the receptive-field-weighted mean ``I = E_sf[f]`` and local
spatial contrast ``LSC = sqrt(max(E_sf[(f - I)²], 1e-6))`` are combined as ``r = a · softplus(b · (I + w · LSC)
+ c)`` with learnable scalars ``w, a, b, c`` per neuron.

Compared with the reference, the single-cell and the multi-cell model compute the same thing: the single-cell
contrast has the same ``1e-6`` variance floor (no NaN gradient on a uniform patch), its loss is a plain
element mean (the reference divided a mean by the element count again, shrinking gradients), and after each
optimiser step it keeps both the gain ``a`` and the contrast weight ``w`` non-negative (the reference's comment
promised the gain, its code clamped only ``w``).

STA files are read by :mod:`openretina.utils.sta_processing`, imported only when a model is built, so
``import openretina.models`` stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn

from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError
from openretina.models.core_readout import BaseCoreReadout
from openretina.models.optimizers import configure_optimizer_and_scheduler
from openretina.modules.losses import CorrelationLoss3d, PoissonLoss3d

__all__ = ["SingleCellSpatialContrast", "SpatialContrastCoreReadout"]

_WEIGHT_EPS = 1e-8
_MIN_VARIANCE = 1e-6


def load_sta_filters(
    sta_dir: str | Path,
    file_name: str,
    flip_sta: bool,
    target_spatial_shape: tuple[int, int],
    temporal_crop_frames: int | None,
    sigma_contour: float,
) -> tuple[np.ndarray, np.ndarray, Mapping[str, Any]]:
    """``(spatial (H, W), temporal (T_f,), gaussian fit parameters)`` of the STA file ``sta_dir/file_name``."""
    path = Path(sta_dir) / file_name
    if not path.is_file():
        raise DataFileNotFoundError(
            f"spatial-contrast model: STA file {str(path)!r} does not exist. Check sta_dir and the file name "
            "(pattern 'cell_data_{retina_index}_WN_stas_cell_{cell_index}.npy' by default)."
        )
    from openretina.utils.sta_processing import load_sta_and_extract_filters

    return load_sta_and_extract_filters(
        Path(sta_dir),
        file_name,
        flip_sta=flip_sta,
        target_spatial_shape=target_spatial_shape,
        temporal_crop_frames=temporal_crop_frames,
        sigma_contour=sigma_contour,
    )


def _crop_window(centre: int, crop: int, size: int) -> slice:
    """``crop`` pixels around ``centre``, shifted inwards at the borders."""
    start = min(max(centre - crop // 2, 0), size - crop)
    return slice(start, start + crop)


class SingleCellSpatialContrast(lightning.LightningModule):
    """Spatial-contrast model of one neuron with filters from its STA file.

    Input: (batch, 1, time, height, width) stimulus at the full ``in_shape`` frame size.
    Output: (batch, time - T_f + 1, 1) predicted rate; ``T_f`` is the temporal filter length.

    Args:
        in_shape: ``(1, T, H, W)``; only single-channel stimuli are supported.
        sta_dir, sta_file_name: location of the STA ``.npy`` file (time, height, width).
        flip_sta: mirror the STA along the width axis.
        temporal_crop_frames: keep only the last frames of the temporal filter.
        sigma_contour: extent of the Gaussian spatial mask, in standard deviations.
        spat_crop_size: ``(h, w)`` window around the receptive-field centre the model looks at (default: whole
            frame).
        learning_rate, w_init, a_init, b_init, c_init: optimiser step size and initial ``w, a, b, c``.
        loss: training loss, default ``PoissonLoss3d(avg=True)`` (element mean).
        validation_loss: logged as ``val_evaluation_loss``; default ``CorrelationLoss3d(avg=True)`` (negated
            correlation).

    Logs ``train_loss``, ``train_correlation``, ``val_loss``, ``val_correlation``, ``val_evaluation_loss``; the
    LR scheduler monitors ``val_correlation``.
    """

    spatial_filter: torch.Tensor
    temporal_filter: torch.Tensor
    spatial_filter_sum: torch.Tensor

    def __init__(
        self,
        in_shape: Sequence[int],
        sta_dir: str | Path,
        sta_file_name: str,
        flip_sta: bool = False,
        temporal_crop_frames: int | None = None,
        sigma_contour: float = 3.0,
        spat_crop_size: Sequence[int] | None = None,
        learning_rate: float = 1e-3,
        w_init: float = 0.0,
        a_init: float = 1.0,
        b_init: float = 1.0,
        c_init: float = 0.0,
        loss: nn.Module | None = None,
        validation_loss: nn.Module | None = None,
        n_neurons_dict: Mapping[str, int] | None = None,
        data_info: Mapping[str, Any] | None = None,
    ) -> None:
        # n_neurons_dict / data_info are passed by the training builder to every model; one cell needs neither.
        super().__init__()
        self.save_hyperparameters(ignore=["loss", "validation_loss", "n_neurons_dict", "data_info"], logger=False)
        channels, _, height, width = (int(v) for v in in_shape)
        if channels != 1:
            raise DataShapeError(
                f"SingleCellSpatialContrast: in_shape {tuple(in_shape)} has {channels} channels; the model needs a "
                "single-channel stimulus (1, time, height, width)."
            )
        spatial, temporal, params = load_sta_filters(
            sta_dir, sta_file_name, flip_sta, (height, width), temporal_crop_frames, sigma_contour
        )
        self.frame_size = (height, width)
        self.rf_location = (int(params["center_y"]), int(params["center_x"]))
        crop = tuple(int(v) for v in spat_crop_size) if spat_crop_size is not None else (height, width)
        if crop[0] > height or crop[1] > width:
            raise DataShapeError(
                f"SingleCellSpatialContrast: spat_crop_size {crop} exceeds the frame size {(height, width)}."
            )
        self._rows = _crop_window(self.rf_location[0], crop[0], height)
        self._cols = _crop_window(self.rf_location[1], crop[1], width)
        self.learning_rate = learning_rate
        self.nl_a = nn.Parameter(torch.tensor(float(a_init)))
        self.nl_b = nn.Parameter(torch.tensor(float(b_init)))
        self.nl_c = nn.Parameter(torch.tensor(float(c_init)))
        self.w = nn.Parameter(torch.tensor(float(w_init)))
        spatial_tensor = torch.as_tensor(spatial, dtype=torch.float32)[self._rows, self._cols]
        self.register_buffer("spatial_filter", spatial_tensor.clone())
        self.register_buffer("temporal_filter", torch.as_tensor(temporal, dtype=torch.float32).clone())
        self.register_buffer("spatial_filter_sum", spatial_tensor.sum())
        self.loss = loss if loss is not None else PoissonLoss3d(avg=True)
        self.validation_loss = validation_loss if validation_loss is not None else CorrelationLoss3d(avg=True)
        self.correlation_metric = CorrelationLoss3d(avg=True, negate=False)

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        """Input: (batch, 1, time, H, W). Output: (batch, time - T_f + 1, 1)."""
        filter_length = self.temporal_filter.shape[0]
        if x.dim() != 5 or x.shape[1] != 1 or tuple(x.shape[3:]) != self.frame_size or x.shape[2] < filter_length:
            raise DataShapeError(
                f"SingleCellSpatialContrast: stimulus has shape {tuple(x.shape)}; expected (batch, 1, time >= "
                f"{filter_length}, {self.frame_size[0]}, {self.frame_size[1]})."
            )
        patch = x[..., self._rows, self._cols]
        filtered = F.conv3d(patch, self.temporal_filter[None, None, :, None, None])[:, 0]  # (B, T_out, h, w)
        norm = self.spatial_filter_sum + _WEIGHT_EPS
        intensity = (filtered * self.spatial_filter).sum(dim=(2, 3)) / norm
        variance = ((filtered - intensity[..., None, None]).pow(2) * self.spatial_filter).sum(dim=(2, 3)) / norm
        contrast = torch.sqrt(torch.clamp(variance, min=_MIN_VARIANCE))
        rate = self.nl_a * F.softplus(self.nl_b * (intensity + self.w * contrast) + self.nl_c)
        return rate.unsqueeze(-1)

    def training_step(self, batch: tuple[str, Any], batch_idx: int) -> torch.Tensor:
        """Loss on one ``(session_id, DataPoint)`` batch; targets (batch, time, 1)."""
        _, (inputs, targets) = batch
        output = self.forward(inputs)
        loss = self.loss(output, targets)
        log = {"on_step": False, "on_epoch": True, "batch_size": inputs.shape[0]}
        self.log("train_loss", loss, **log)
        self.log("train_correlation", self.correlation_metric(output, targets), prog_bar=True, **log)
        return loss

    def validation_step(self, batch: tuple[str, Any], batch_idx: int) -> torch.Tensor:
        """Loss, evaluation loss and correlation on one validation batch."""
        _, (inputs, targets) = batch
        output = self.forward(inputs)
        loss = self.loss(output, targets)
        log = {"on_step": False, "on_epoch": True, "batch_size": inputs.shape[0]}
        self.log("val_loss", loss, prog_bar=True, **log)
        self.log("val_evaluation_loss", self.validation_loss(output, targets), **log)
        self.log("val_correlation", self.correlation_metric(output, targets), prog_bar=True, **log)
        return loss

    def test_step(self, batch: tuple[str, Any], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Loss, evaluation loss and correlation on one test batch, logged under the metrics' class names."""
        _, (inputs, targets) = batch
        output = self.forward(inputs)
        loss = self.loss(output, targets)
        self.log_dict(
            {
                type(self.loss).__name__: loss,
                type(self.validation_loss).__name__: self.validation_loss(output, targets),
                "test_correlation": self.correlation_metric(output, targets),
            },
            batch_size=inputs.shape[0],
        )
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Keep the gain ``a`` and the contrast weight ``w`` non-negative after each step."""
        with torch.no_grad():
            self.nl_a.clamp_(min=0.0)
            self.w.clamp_(min=0.0)

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        """AdamW plus ReduceLROnPlateau on ``val_correlation`` (higher is better)."""
        return configure_optimizer_and_scheduler(
            self.parameters(), learning_rate=self.learning_rate, monitor="val_correlation", mode="max"
        )


class SpatialContrastCoreReadout(BaseCoreReadout):
    """Multi-session spatial-contrast model: a frame-cutting dummy core and one SC readout per session.

    Input: (batch, 1, time, height, width). Output: (batch, time - cut_first_n_frames - T_f + 1, neurons).

    ``data_info["sessions_kwargs"][session]["cell_indices"]`` lists the cells of each session; cell ``i`` of
    session ``s`` reads ``sta_dir / sta_file_pattern.format(retina_index=s, cell_index=i)``. Reloading a
    checkpoint reads the STA files again, so they must be available. After each optimiser step every gain
    ``a`` is clamped to be non-negative.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        n_neurons_dict: Mapping[str, int],
        sta_dir: str | Path,
        sta_file_pattern: str = "cell_data_{retina_index}_WN_stas_cell_{cell_index}.npy",
        flip_sta: bool = False,
        temporal_crop_frames: int | None = 30,
        sigma_contour: float = 3.0,
        cut_first_n_frames: int = 0,
        w_init: float = 0.0,
        a_init: float = 4.0,
        b_init: float = 1.0,
        c_init: float = -5.0,
        learning_rate: float = 0.01,
        neuron_chunk_size: int = 32,
        loss: nn.Module | None = None,
        evaluation_loss: nn.Module | None = None,
        data_info: dict[str, Any] | None = None,
    ) -> None:
        from openretina.modules.core.base_core import DummyCore
        from openretina.modules.readout.spatial_contrast_model_readout import MultiSpatialContrastReadout

        sessions_kwargs = (data_info or {}).get("sessions_kwargs")
        if sessions_kwargs is None:
            raise DataFormatError(
                "SpatialContrastCoreReadout: data_info with 'sessions_kwargs'[session]['cell_indices'] is required "
                "to find each cell's STA file; pass the data_info of the dataset."
            )
        height, width = int(in_shape[2]), int(in_shape[3])
        spatial_filters: dict[str, torch.Tensor] = {}
        temporal_filters: dict[str, torch.Tensor] = {}
        for session, n_neurons in n_neurons_dict.items():
            cell_indices = list(sessions_kwargs.get(session, {}).get("cell_indices", []))
            if len(cell_indices) != n_neurons:
                raise DataFormatError(
                    f"SpatialContrastCoreReadout: session {session!r} has {n_neurons} neurons but "
                    f"data_info['sessions_kwargs'][{session!r}]['cell_indices'] lists {len(cell_indices)} cells."
                )
            filters = [
                load_sta_filters(
                    sta_dir,
                    sta_file_pattern.format(retina_index=session, cell_index=cell),
                    flip_sta,
                    (height, width),
                    temporal_crop_frames,
                    sigma_contour,
                )
                for cell in cell_indices
            ]
            spatial_filters[session] = torch.stack([torch.as_tensor(f[0], dtype=torch.float32) for f in filters])
            temporal_filters[session] = torch.stack([torch.as_tensor(f[1], dtype=torch.float32) for f in filters])
        readout = MultiSpatialContrastReadout(
            in_shape=tuple(in_shape),
            n_neurons_dict=dict(n_neurons_dict),
            spatial_filters_dict=spatial_filters,
            temporal_filters_dict=temporal_filters,
            w_init=w_init,
            a_init=a_init,
            b_init=b_init,
            c_init=c_init,
            mean_activity_dict=(data_info or {}).get("mean_activity_dict"),
            neuron_chunk_size=neuron_chunk_size,
        )
        super().__init__(
            core=DummyCore(cut_first_n_frames=cut_first_n_frames),
            readout=readout,
            learning_rate=learning_rate,
            loss=loss if loss is not None else PoissonLoss3d(avg=True),
            evaluation_loss=evaluation_loss,
            data_info=data_info,
        )

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Clamp every session's gains ``nl_a`` to be non-negative after each step."""
        super().on_train_batch_end(outputs, batch, batch_idx)
        with torch.no_grad():
            for session in self.readout_keys():
                self.readout[session].nl_a.clamp_(min=0.0)
