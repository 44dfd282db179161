"""Core-readout models as Lightning modules: a shared core feeds one readout per recording session.

* :class:`BaseCoreReadout` holds a core and a (multi-session) readout, runs the training, validation and test
  steps and configures the optimizer.
* :class:`UnifiedCoreReadout` builds core and readout from Hydra configs (``_target_``); all zoo models are this.
* :class:`ExampleCoreReadout` is the flat-argument reference class (also the legacy-checkpoint fallback).
* :class:`CoreReadout` composes any core and readout objects, e.g. your own.

Layouts: stimulus ``(batch, channels, time, height, width)``; responses ``(batch, time, neurons)``. Without
temporal padding the output is shorter than the stimulus by the core's temporal receptive field minus one
(plus any explicit frame cut), see :meth:`BaseCoreReadout.number_of_cut_frames`.

Differences from the reference, each fixing one of its documented weak points:

* the default LR scheduler monitors ``val_evaluation_loss``, a metric the model logs (the reference's
  ``UnifiedCoreReadout`` monitored the never-logged ``val_correlation`` and crashed); its mode follows the
  evaluation metric (``max`` for a correlation, ``min`` for a loss);
* ``val_loss`` / test loss are divided by the number of output elements (the reference divided by
  ``batch + time + neurons``), so they are per-element losses comparable across batch and clip sizes;
* ``data_info["pretrained_performance"]`` after ``trainer.test`` is the per-neuron correlation averaged over
  *every* batch of the last test dataloader (the reference kept only the last batch);
* building a model never runs the core in training mode, so BatchNorm statistics are untouched;
* gradient norms are logged before each optimizer step (the reference's epoch-end hook saw no gradients);
* module-valued constructor arguments are not pickled into the checkpoint's hyper-parameters, and Hydra configs
  are stored resolved and detached from the training config they came from.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import lightning
import torch
from hydra.utils import instantiate
from lightning.pytorch.core.mixins import HyperparametersMixin
from lightning.pytorch.utilities.parsing import collect_init_args
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from omegaconf import DictConfig, OmegaConf
from torch import nn

from openretina.errors import DataFormatError, DataShapeError, InsufficientFramesError
from openretina.models.optimizers import configure_optimizer_and_scheduler, metric_mode
from openretina.modules.layers.convolutions import conv_backend
from openretina.modules.losses import CorrelationLoss3d, MSE3d, PoissonLoss3d
from openretina.modules.readout.base import Readout

__all__ = [
    # Reference names kept importable from here (the reference's tests use them).
    "_GIN_MODEL_CHECKPOINTS_BASE_PATH",
    "_HUGGINGFACE_CHECKPOINTS_BASE_PATH",
    "_MODEL_NAME_TO_REMOTE_LOCATION",
    "BaseCoreReadout",
    "CoreReadout",
    "ExampleCoreReadout",
    "SingleSessionReadout",
    "UnifiedCoreReadout",
    "load_core_readout_from_remote",
    "load_core_readout_model",
]

# Longest stimulus tried when probing how many frames a model cuts (a few seconds at typical frame rates).
_MAX_PROBE_FRAMES = 1024


def _module_valued_init_args(frame: Any) -> list[str]:
    """Names of constructor arguments (along the ``__init__`` chain of ``frame``) whose final value is a module.

    Lightning would pickle such arguments into the checkpoint's hyper-parameters although their weights are
    already in the state_dict.
    """
    merged: dict[str, Any] = {}
    for local_args in collect_init_args(frame, [], classes=(HyperparametersMixin,)):
        merged.update(local_args)
    return [name for name, value in merged.items() if isinstance(value, nn.Module)]


def _accepts_keyword(function: Any, name: str) -> bool:
    """Whether ``function`` can be called with the keyword argument ``name``."""
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class SingleSessionReadout(nn.ModuleDict):
    """Presents one single-session readout with the multi-session readout interface.

    The readout is stored under ``session_name`` (state_dict keys ``<session_name>.<readout key>``, as for a
    multi-session readout). Every ``data_key`` is routed to it: a single-session model has nothing to choose.
    ``data_key`` is passed on only if the readout's ``forward`` accepts it.

    Input: (batch, channels, time, height, width) core features. Output: (batch, time, neurons).
    """

    def __init__(self, readout: nn.Module, session_name: str = "default") -> None:
        super().__init__({session_name: readout})
        self.session_name = session_name
        self._passes_data_key = _accepts_keyword(readout.forward, "data_key")

    @property
    def inner(self) -> nn.Module:
        """The wrapped readout."""
        return self[self.session_name]

    def forward(self, x: torch.Tensor, data_key: str | None = None, **kwargs: Any) -> torch.Tensor:
        """Run the wrapped readout; ``data_key`` only reaches it if its ``forward`` takes that argument."""
        if self._passes_data_key:
            return self.inner(x, data_key=data_key, **kwargs)
        return self.inner(x, **kwargs)

    def regularizer(self, data_key: str | None = None, reduction: Any = None) -> torch.Tensor | float:
        """The wrapped readout's penalty (0 for readouts without a ``regularizer`` method)."""
        regularizer = getattr(self.inner, "regularizer", None)
        if regularizer is None:
            return 0.0
        return regularizer() if reduction is None else regularizer(reduction=reduction)

    def readout_keys(self) -> list[str]:
        """The one session name."""
        return [self.session_name]

    @property
    def sessions(self) -> list[str]:
        """Alias of :meth:`readout_keys`."""
        return self.readout_keys()


class BaseCoreReadout(lightning.LightningModule):
    """A core shared by all sessions followed by a multi-session readout, trainable with Lightning.

    Input: (batch, channels, time, height, width) stimulus.
    Output: (batch, time_out, neurons) predicted responses, ``time_out = time - number_of_cut_frames()``.

    Args:
        core: feature extractor ``(B, C, T, H, W) -> (B, C', T', H', W')`` with a ``regularizer()``.
        readout: multi-session readout: ``forward(features, data_key=...)``, ``regularizer(data_key)``,
            ``readout_keys()``.
        learning_rate: optimizer learning rate.
        loss: training loss ``(prediction, target) -> scalar``; default ``PoissonLoss3d()`` (summed, as in the
            reference, so its scale grows with batch size, clip length and neuron count).
        evaluation_loss: evaluation metric, default ``CorrelationLoss3d(avg=True, negate=False)``, the mean
            Pearson correlation (higher is better).
        data_info: dataset metadata (``input_shape`` (C, H, W), ``n_neurons_dict``, ``mean_activity_dict``,
            ...), stored in the checkpoint.

    Batches are ``(session_id, DataPoint(inputs (B, C, T, H, W), targets (B, T, N)))``. Logged metrics (epoch
    means, weighted by batch size): ``train_loss``, ``train_total_loss``, ``train_evaluation_loss``,
    ``regularization_loss_core``, ``regularization_loss_readout``; ``val_loss`` (loss per output element),
    ``val_total_loss`` (``val_loss`` plus the penalties), ``val_evaluation_loss``, ``val_correlation``,
    ``val_regularization_loss_core``, ``val_regularization_loss_readout``; test: ``<loss class name>`` (per
    element) and ``<metric class name>``.
    """

    # Duck-typed: any modules with the core / multi-session readout interface described above.
    core: Any
    readout: Any

    def __init__(
        self,
        core: nn.Module,
        readout: nn.Module,
        learning_rate: float,
        loss: nn.Module | None = None,
        evaluation_loss: nn.Module | None = None,
        data_info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        frame = inspect.currentframe()
        self.save_hyperparameters(ignore=_module_valued_init_args(frame), frame=frame, logger=False)
        self.core = core
        self.readout = readout
        self.learning_rate = learning_rate
        self.loss = loss if loss is not None else PoissonLoss3d()
        self.evaluation_loss = (
            evaluation_loss if evaluation_loss is not None else CorrelationLoss3d(avg=True, negate=False)
        )
        # One correlation function for every "correlation" the model reports (val_correlation).
        self.correlation_metric = CorrelationLoss3d(avg=True, negate=False)
        self.data_info: dict[str, Any] = data_info if data_info is not None else {}
        self.optimizer_config: Mapping[str, Any] | DictConfig | None = None
        self.lr_scheduler_config: Mapping[str, Any] | DictConfig | None = None
        # Test-set aggregation: (dataloader index, session) -> [weighted per-neuron metric sum, number of clips].
        self._test_performance_sums: dict[tuple[int, str], list[Any]] = {}

    # ----------------------------------------------------------------------------------------------- inference
    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        """Predict responses of session ``data_key``, or of all sessions concatenated in sorted order (None).

        Input: (batch, channels, time, height, width). Output: (batch, time_out, neurons).
        Raises :class:`~openretina.errors.InsufficientFramesError` when ``time`` is too short for the core.
        """
        if x.dim() != 5:
            raise DataShapeError(
                f"{type(self).__name__}.forward: stimulus has shape {tuple(x.shape)} ({x.dim()} dims); expected 5 "
                "dims (batch, channels, time, height, width). Add a batch axis with x[None] for a single clip."
            )
        features = self.core(x)
        if features.dim() == 5 and features.shape[2] == 0:
            raise InsufficientFramesError(
                f"{type(self).__name__}: the stimulus has {x.shape[2]} frames, which leaves no output frame after "
                "the core's temporal kernels; give a longer stimulus (see number_of_cut_frames())."
            )
        return self.readout(features, data_key=data_key)

    def readout_keys(self) -> list[str]:
        """Session names of the readout, sorted."""
        return list(self.readout.readout_keys())

    def stimulus_shape(self, time_steps: int, num_batches: int = 1) -> tuple[int, int, int, int, int]:
        """Shape ``(num_batches, C, time_steps, H, W)`` of a stimulus this model accepts.

        ``C, H, W`` come from ``data_info["input_shape"]``. ``time_steps`` must exceed
        :meth:`number_of_cut_frames` (30 for the Höfling low-res zoo models: 50 frames give 20 output frames,
        30 frames raise :class:`~openretina.errors.InsufficientFramesError`).
        """
        input_shape = self.data_info.get("input_shape")
        if input_shape is None:
            raise DataFormatError(
                f"{type(self).__name__}.stimulus_shape: data_info has no 'input_shape' (channels, height, width); "
                f"its keys are {sorted(self.data_info)}. Pass data_info with input_shape when building the model."
            )
        channels, height, width = (int(v) for v in input_shape)
        return (num_batches, channels, time_steps, height, width)

    @torch.no_grad()
    def number_of_cut_frames(self) -> int:
        """How many stimulus frames the model consumes before its first output frame (``T_in - T_out``).

        Read from ``data_info["model_cut_frames"]`` when a test run stored it, else measured once per model with
        zero stimuli in eval mode (BatchNorm statistics are not touched) and remembered.
        """
        stored = self.data_info.get("model_cut_frames")
        if isinstance(stored, int):
            return stored
        measured = getattr(self, "_measured_cut_frames", None)
        if measured is None:
            measured = self._measure_cut_frames()
            self._measured_cut_frames = measured
        return measured

    def _measure_cut_frames(self) -> int:
        data_key = self.readout_keys()[0]
        was_training = self.training
        self.eval()
        # The dense path: "auto" would time every convolution path for each probe shape.
        with conv_backend("dense"):
            try:
                time_steps = 1
                while True:
                    probe = torch.zeros(self.stimulus_shape(time_steps), device=self.device)
                    try:
                        output = self.forward(probe, data_key=data_key)
                        return time_steps - output.shape[1]
                    except (InsufficientFramesError, DataShapeError, RuntimeError):  # too short (any wording)
                        if time_steps >= _MAX_PROBE_FRAMES:
                            raise
                        time_steps *= 2
            finally:
                self.train(was_training)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """``data_info`` under the timm name."""
        return self.data_info

    def update_model_data_info(self, data_info: Mapping[str, Any]) -> None:
        """Merge ``data_info`` into the model's: dict values are merged per key, other values replaced.

        ``input_shape`` must match the model's. The checkpoint's hyper-parameters are updated as well.
        """
        for key, value in data_info.items():
            if key == "input_shape" and "input_shape" in self.data_info:
                if tuple(value) != tuple(self.data_info["input_shape"]):
                    raise DataShapeError(
                        f"{type(self).__name__}.update_model_data_info: input_shape {tuple(value)} differs from the "
                        f"model's {tuple(self.data_info['input_shape'])}; the model cannot take this stimulus."
                    )
            elif isinstance(value, Mapping) and isinstance(self.data_info.get(key), dict):
                self.data_info[key].update(value)
            else:
                self.data_info[key] = value
        if "n_neurons_dict" in self.data_info:
            self.hparams["n_neurons_dict"] = self.data_info["n_neurons_dict"]
        self.hparams["data_info"] = self.data_info

    # ----------------------------------------------------------------------------------------------- training
    def _regularizers(self, session_id: str) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """Core and readout penalties; a core without a ``regularizer`` method (any plain module) adds 0."""
        core_regularizer = getattr(self.core, "regularizer", None)
        return (core_regularizer() if core_regularizer is not None else 0.0), self.readout.regularizer(session_id)

    def training_step(self, batch: tuple[str, Any], batch_idx: int) -> torch.Tensor:
        """Loss + core and readout penalties on one ``(session_id, DataPoint)`` batch; returns the total."""
        session_id, (inputs, targets) = batch
        output = self.forward(inputs, session_id)
        loss = self.loss(output, targets)
        regularization_core, regularization_readout = self._regularizers(session_id)
        total_loss = loss + regularization_core + regularization_readout
        evaluation = self.evaluation_loss(output, targets)
        log = {"on_step": False, "on_epoch": True, "batch_size": inputs.shape[0]}
        self.log("regularization_loss_core", regularization_core, **log)
        self.log("regularization_loss_readout", regularization_readout, **log)
        self.log("train_total_loss", total_loss, **log)
        self.log("train_loss", loss, **log)
        self.log("train_evaluation_loss", evaluation, prog_bar=True, **log)
        return total_loss

    def validation_step(self, batch: tuple[str, Any], batch_idx: int) -> torch.Tensor:
        """Per-element loss, penalties, evaluation metric and correlation on one validation batch."""
        session_id, (inputs, targets) = batch
        output = self.forward(inputs, session_id)
        loss = self.loss(output, targets) / output.numel()
        regularization_core, regularization_readout = self._regularizers(session_id)
        log = {"on_step": False, "on_epoch": True, "batch_size": inputs.shape[0]}
        self.log("val_loss", loss, prog_bar=True, **log)
        self.log("val_regularization_loss_core", regularization_core, **log)
        self.log("val_regularization_loss_readout", regularization_readout, **log)
        self.log("val_total_loss", loss + regularization_core + regularization_readout, **log)
        self.log("val_evaluation_loss", self.evaluation_loss(output, targets), prog_bar=True, **log)
        self.log("val_correlation", self.correlation_metric(output, targets), **log)
        return loss

    def test_step(self, batch: tuple[str, Any], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Per-element loss and evaluation metric; accumulates the per-neuron metric for ``data_info``."""
        session_id, (inputs, targets) = batch
        output = self.forward(inputs, session_id)
        loss = self.loss(output, targets) / output.numel()
        evaluation = self.evaluation_loss(output, targets)
        per_neuron = getattr(self.evaluation_loss, "_per_neuron_correlations", None)
        value = (per_neuron if per_neuron is not None else evaluation).detach().cpu().double()
        batch_size = inputs.shape[0]
        sums = self._test_performance_sums.setdefault((dataloader_idx, session_id), [0.0, 0])
        sums[0] = sums[0] + value * batch_size
        sums[1] += batch_size
        self._record_cut_frames(targets.shape[1] - output.shape[1])
        self.log_dict(
            {type(self.loss).__name__: loss, type(self.evaluation_loss).__name__: evaluation},
            batch_size=batch_size,
        )
        return loss

    def _record_cut_frames(self, cut_frames: int) -> None:
        stored = self.data_info.setdefault("model_cut_frames", cut_frames)
        if stored != cut_frames:
            warnings.warn(
                f"{type(self).__name__}: this batch lost {cut_frames} frames but data_info['model_cut_frames'] is "
                f"{stored}; keeping the stored value.",
                UserWarning,
                stacklevel=2,
            )

    def on_test_epoch_start(self) -> None:
        """Start a fresh aggregation of per-neuron test performance."""
        self._test_performance_sums = {}

    def on_test_epoch_end(self) -> None:
        """Store each session's mean per-neuron metric over all clips of the last dataloader that had it."""
        self.data_info.setdefault("pretrained_performance_metric", f"test {type(self.evaluation_loss).__name__}")
        performance = self.data_info.setdefault("pretrained_performance", {})
        for (_, session_id), (total, count) in sorted(self._test_performance_sums.items()):
            performance[session_id] = (total / count).float()

    def on_test_end(self) -> None:
        """Copy ``data_info`` into the hyper-parameters and write ``<best>_final.ckpt`` next to the best checkpoint."""
        self.hparams["data_info"] = self.data_info
        callback = getattr(self.trainer, "checkpoint_callback", None)
        best_model_path = getattr(callback, "best_model_path", "")
        if best_model_path:
            final_path = str(Path(best_model_path).with_name(Path(best_model_path).stem + "_final.ckpt"))
            self.trainer.save_checkpoint(final_path, weights_only=False)

    def on_fit_start(self) -> None:
        """Log the hyper-parameters (without the bulky ``data_info`` and ``n_neurons_dict``) to every logger."""
        hyperparameters = {k: v for k, v in self.hparams.items() if k not in ("data_info", "n_neurons_dict")}
        for logger in self.loggers:
            logger.log_hyperparams(hyperparameters)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Log the total L2 gradient norm of core and readout (gradients exist only until the step)."""
        for name, module in (("core", self.core), ("readout", self.readout)):
            gradients = [p.grad.detach().norm(2) for p in module.parameters() if p.grad is not None]
            if gradients:
                self.log(f"grad_2.0_norm_total_{name}", torch.stack(gradients).norm(2), on_step=False, on_epoch=True)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Project readout parameters back onto their constraints (e.g. non-negative weights) after each step."""
        for module in self.readout.modules():
            if isinstance(module, Readout):
                module.apply_constraints()

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        """AdamW and ReduceLROnPlateau on ``val_evaluation_loss``, or ``optimizer_config`` / ``lr_scheduler_config``."""
        trainer = self._trainer
        return configure_optimizer_and_scheduler(
            self.parameters(),
            learning_rate=self.learning_rate,
            monitor="val_evaluation_loss",
            mode=metric_mode(self.evaluation_loss),
            optimizer_config=self.optimizer_config,
            lr_scheduler_config=self.lr_scheduler_config,
            estimate_stepping_batches=(lambda: trainer.estimated_stepping_batches) if trainer is not None else None,
        )

    # ----------------------------------------------------------------------------------------------- helpers
    def save_weight_visualizations(
        self, folder_path: str | Path, file_format: str = "jpg", state_suffix: str = ""
    ) -> None:
        """Write core and readout weight plots into ``weights_core`` / ``weights_readout`` under ``folder_path``."""
        for name, module in (("core", self.core), ("readout", self.readout)):
            save = getattr(module, "save_weight_visualizations", None)
            if save is None:
                continue
            folder = Path(folder_path) / f"weights_{name}"
            if _accepts_keyword(save, "state_suffix"):
                save(str(folder), file_format, state_suffix=state_suffix)
            else:
                save(str(folder), file_format)

    @staticmethod
    @torch.no_grad()
    def compute_readout_input_shape(core_in_shape: Sequence[int], core: nn.Module) -> torch.Size:
        """Shape ``(C', T', H', W')`` of the core's output for one input of shape ``core_in_shape`` (C, T, H, W).

        Runs the core once on zeros in eval mode, so BatchNorm running statistics are left untouched.
        """
        reference = next(iter(core.parameters()), None)
        device = reference.device if reference is not None else torch.device("cpu")
        was_training = core.training
        core.eval()
        try:
            output = core(torch.zeros((1, *core_in_shape), device=device))
        finally:
            core.train(was_training)
        return output.shape[1:]


def _to_config(config: Mapping[str, Any] | DictConfig) -> DictConfig:
    """A resolved copy of ``config`` detached from any parent config (no embedded training config)."""
    if isinstance(config, DictConfig):
        config = cast(dict[str, Any], OmegaConf.to_container(config, resolve=True))
    return OmegaConf.create(dict(config))


def _maybe_instantiate(value: nn.Module | Mapping[str, Any] | DictConfig | None) -> nn.Module | None:
    """Instantiate a ``_target_`` config; pass modules and None through."""
    if value is None or isinstance(value, nn.Module):
        return value
    return instantiate(_to_config(value))


def _mean_activity_tensors(data_info: Mapping[str, Any] | None) -> dict[str, torch.Tensor] | None:
    """``data_info["mean_activity_dict"]`` with every value as a float32 tensor (JSON files store lists)."""
    if not data_info or data_info.get("mean_activity_dict") is None:
        return None
    return {
        str(session): torch.as_tensor(values, dtype=torch.float32)
        for session, values in data_info["mean_activity_dict"].items()
    }


class UnifiedCoreReadout(BaseCoreReadout):
    """Core-readout model whose core and readout are built from Hydra configs (``_target_`` + arguments).

    Input: (batch, channels, time, height, width). Output: (batch, time_out, neurons).

    Args:
        in_shape: ``(C, T, H, W)`` of a training clip.
        n_neurons_dict: neurons per session.
        core: core config; ``channels`` is set to ``(C, *hidden_channels)`` when ``hidden_channels`` is given.
        readout: readout config; a missing ``in_shape`` is filled with the core's output shape.
        hidden_channels: channels of the core's layers.
        learning_rate, loss, evaluation_loss, data_info: see :class:`BaseCoreReadout`; ``loss`` and
            ``evaluation_loss`` may also be ``_target_`` configs.
        optimizer: optimizer config (``_target_``), instantiated with ``params=...``; default AdamW.
        lr_scheduler: scheduler config (``_target_`` plus optional Lightning keys ``monitor``, ``interval``,
            ``frequency``); default ReduceLROnPlateau on ``val_evaluation_loss``.

    The saved hyper-parameters hold ``core`` with ``channels`` and ``readout`` with ``in_shape`` filled in, as the
    reference's do, so a checkpoint rebuilds the same model.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        n_neurons_dict: Mapping[str, int],
        core: Mapping[str, Any] | DictConfig,
        readout: Mapping[str, Any] | DictConfig,
        hidden_channels: Sequence[int] | None = None,
        learning_rate: float = 0.001,
        loss: nn.Module | Mapping[str, Any] | DictConfig | None = None,
        evaluation_loss: nn.Module | Mapping[str, Any] | DictConfig | None = None,
        data_info: dict[str, Any] | None = None,
        optimizer: Mapping[str, Any] | DictConfig | None = None,
        lr_scheduler: Mapping[str, Any] | DictConfig | None = None,
    ) -> None:
        # Normalised values are re-bound to the argument names: Lightning saves the constructor's locals.
        in_shape = tuple(int(v) for v in in_shape)
        n_neurons_dict = {str(k): int(v) for k, v in n_neurons_dict.items()}
        hidden_channels = tuple(int(v) for v in hidden_channels) if hidden_channels is not None else None
        core = _to_config(core)
        readout = _to_config(readout)
        optimizer = _to_config(optimizer) if optimizer is not None else None
        lr_scheduler = _to_config(lr_scheduler) if lr_scheduler is not None else None
        if len(in_shape) != 4:
            raise DataShapeError(
                f"UnifiedCoreReadout: in_shape {in_shape} must be (channels, time, height, width), 4 values."
            )
        if hidden_channels is not None:
            core.channels = [in_shape[0], *hidden_channels]
        core_module = instantiate(core, n_neurons_dict=n_neurons_dict)
        if "in_shape" not in readout:  # absent or "???": OmegaConf's `in` is False for missing values
            readout.in_shape = list(self.compute_readout_input_shape(in_shape, core_module))
        readout_module = instantiate(
            readout, n_neurons_dict=n_neurons_dict, mean_activity_dict=_mean_activity_tensors(data_info)
        )
        super().__init__(
            core=core_module,
            readout=readout_module,
            learning_rate=learning_rate,
            loss=_maybe_instantiate(loss),
            evaluation_loss=_maybe_instantiate(evaluation_loss),
            data_info=data_info,
        )
        self.optimizer_config = optimizer
        self.lr_scheduler_config = lr_scheduler


class ExampleCoreReadout(BaseCoreReadout):
    """Reference core-readout class with flat arguments: a SimpleCoreWrapper core and a Gaussian-mask readout.

    Input: (batch, channels, time, height, width). Output: (batch, time_out, neurons).

    Kept for compatibility (old checkpoints, scripts). Prefer :class:`UnifiedCoreReadout`.

    Caution, argument semantics kept from the reference: ``readout_gamma`` weights the readout's *mask*
    penalty (``mask_l1_reg``) and ``readout_gamma_masks`` its *feature-weight* L1 penalty
    (``feature_weights_l1_reg``), the reverse of what the names suggest; with the defaults (0.4, 0.0) the
    feature weights are unregularised. ``readout_gaussian_masks`` is accepted and ignored.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        hidden_channels: Iterable[int],
        temporal_kernel_sizes: Iterable[int],
        spatial_kernel_sizes: Iterable[int],
        n_neurons_dict: Mapping[str, int],
        core_gamma_input: float = 0.0,
        core_gamma_hidden: float = 0.0,
        core_gamma_in_sparse: float = 0.0,
        core_gamma_temporal: float = 40.0,
        core_input_padding: bool | int | str | Sequence[int] = False,
        core_hidden_padding: bool | int | str | Sequence[int] = True,
        readout_scale: bool = True,
        readout_bias: bool = True,
        readout_gaussian_masks: bool = True,
        readout_gaussian_mean_scale: float = 6.0,
        readout_gaussian_var_scale: float = 4.0,
        readout_positive: bool = True,
        readout_gamma: float = 0.4,
        readout_gamma_masks: float = 0.0,
        readout_reg_avg: bool = False,
        learning_rate: float = 0.01,
        cut_first_n_frames_in_core: int = 30,
        dropout_rate: float = 0.0,
        maxpool_every_n_layers: int | None = None,
        downsample_input_kernel_size: Sequence[int] | None = None,
        convolution_type: str = "custom_separable",
        color_squashing_weights: Sequence[float] | None = None,
        data_info: dict[str, Any] | None = None,
    ) -> None:
        from openretina.modules.core.base_core import SimpleCoreWrapper
        from openretina.modules.readout.multi_readout import MultiGaussianMaskReadout

        warnings.warn(
            "ExampleCoreReadout is kept for compatibility; prefer UnifiedCoreReadout. Note that readout_gamma "
            "weights the mask penalty and readout_gamma_masks the feature-weight penalty.",
            UserWarning,
            stacklevel=2,
        )
        core = SimpleCoreWrapper(
            channels=(in_shape[0], *hidden_channels),
            temporal_kernel_sizes=tuple(temporal_kernel_sizes),
            spatial_kernel_sizes=tuple(spatial_kernel_sizes),
            gamma_input=core_gamma_input,
            gamma_temporal=core_gamma_temporal,
            gamma_in_sparse=core_gamma_in_sparse,
            gamma_hidden=core_gamma_hidden,
            dropout_rate=dropout_rate,
            cut_first_n_frames=cut_first_n_frames_in_core,
            maxpool_every_n_layers=maxpool_every_n_layers,
            downsample_input_kernel_size=downsample_input_kernel_size,
            input_padding=core_input_padding,
            hidden_padding=core_hidden_padding,
            color_squashing_weights=color_squashing_weights,
            convolution_type=convolution_type,
        )
        readout = MultiGaussianMaskReadout(
            in_shape=tuple(self.compute_readout_input_shape(tuple(in_shape), core)),
            n_neurons_dict=dict(n_neurons_dict),
            scale=readout_scale,
            bias=readout_bias,
            gaussian_mean_scale=readout_gaussian_mean_scale,
            gaussian_var_scale=readout_gaussian_var_scale,
            positive=readout_positive,
            mask_l1_reg=readout_gamma,
            feature_weights_l1_reg=readout_gamma_masks,
            readout_reg_avg=readout_reg_avg,
        )
        super().__init__(core=core, readout=readout, learning_rate=learning_rate, data_info=data_info)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Rename legacy readout bias keys ``readout.<session>.bias_param`` to ``readout.<session>.bias``."""
        state_dict = checkpoint["state_dict"]
        legacy_keys = [k for k in state_dict if k.startswith("readout.") and k.endswith(".bias_param")]
        if legacy_keys:
            warnings.warn(
                f"ExampleCoreReadout: renaming {len(legacy_keys)} legacy readout keys '*.bias_param' to '*.bias'.",
                UserWarning,
                stacklevel=2,
            )
        for key in legacy_keys:
            state_dict[key.removesuffix("_param")] = state_dict.pop(key)


class CoreReadout(BaseCoreReadout):
    """Compose any core and readout module into a trainable model, e.g. your own classes.

    Input: (batch, channels, time, height, width). Output: (batch, time_out, neurons).

    Args:
        core: any module mapping the stimulus to ``(B, C', T', H', W')`` features; ``regularizer()`` optional.
        readout: a multi-session readout (with ``readout_keys()``), or a single-session readout, which is
            wrapped in :class:`SingleSessionReadout` under ``session_name``; ``data_key`` reaches the readout only
            if its ``forward`` accepts it.
        learning_rate: optimizer learning rate.
        loss: training loss; default :class:`~openretina.modules.losses.MSE3d`, which, unlike the Poisson loss
            of the zoo models, accepts any real-valued prediction (a custom readout need not end in a positive
            nonlinearity). Pass ``PoissonLoss3d()`` for firing-rate outputs.
        evaluation_loss: evaluation metric, default mean correlation.
        data_info: dataset metadata; without ``input_shape``, :meth:`stimulus_shape` asks the core.
        session_name: session key of a single-session readout.
    """

    def __init__(
        self,
        core: nn.Module,
        readout: nn.Module,
        learning_rate: float = 0.001,
        loss: nn.Module | None = None,
        evaluation_loss: nn.Module | None = None,
        data_info: dict[str, Any] | None = None,
        session_name: str = "default",
    ) -> None:
        if not callable(getattr(readout, "readout_keys", None)):
            readout = SingleSessionReadout(readout, session_name)
        super().__init__(
            core=core,
            readout=readout,
            learning_rate=learning_rate,
            loss=loss if loss is not None else MSE3d(),
            evaluation_loss=evaluation_loss,
            data_info=data_info,
        )

    def stimulus_shape(self, time_steps: int, num_batches: int = 1) -> tuple[int, int, int, int, int]:
        """``(num_batches, C, time_steps, H, W)`` from ``data_info["input_shape"]`` or else the core's own method."""
        core_stimulus_shape = getattr(self.core, "stimulus_shape", None)
        if "input_shape" not in self.data_info and core_stimulus_shape is not None:
            return tuple(core_stimulus_shape(time_steps, num_batches))
        return super().stimulus_shape(time_steps, num_batches)


# Reference import paths: the loaders and the name table live in the model hub (openretina.hub), which imports
# neither this module nor Lightning at import time, so there is no cycle.
from openretina.hub.loading import (  # noqa: E402
    _GIN_MODEL_CHECKPOINTS_BASE_PATH,
    _HUGGINGFACE_CHECKPOINTS_BASE_PATH,
    _MODEL_NAME_TO_REMOTE_LOCATION,
    load_core_readout_from_remote,
    load_core_readout_model,
)
