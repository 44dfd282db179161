"""Multi-session readouts: one readout per recording session, selected by ``data_key``.

Every wrapper is an ``nn.ModuleDict`` keyed by session name, so state_dict keys read
``<session>.<parameter>`` (``readout.<session>.<parameter>`` inside a core-readout model).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataFormatError, DataShapeError
from openretina.modules.readout.base import ClonedReadout, Readout, Reduction
from openretina.modules.readout.factorized import FactorizedReadout, MaskConstraint, WeightsConstraint
from openretina.modules.readout.factorized_gaussian import GaussianMaskReadout
from openretina.modules.readout.gaussian import GaussType, PointGaussianReadout
from openretina.modules.readout.linear_nonlinear_poisson import LNPReadout

__all__ = [
    "MultiFactorizedReadout",
    "MultiGaussianMaskReadout",
    "MultiReadoutBase",
    "MultiSampledGaussianReadout",
    "MultipleLNPReadout",
    "UnknownSessionError",
]


class UnknownSessionError(DataFormatError, KeyError):
    """A ``data_key`` names a session that the readout does not have."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class MultiReadoutBase(nn.ModuleDict):
    """A readout per session, all built from the same class and keyword arguments.

    Input: (batch, channels, time, height, width) core features.
    Output: (batch, time, neurons of ``data_key``); without ``data_key`` the outputs of all sessions are
    concatenated along the neuron axis in sorted session order (with a warning).

    Subclasses set ``_base_readout_cls``; otherwise pass ``base_readout``. Each readout is initialised once, at
    construction, with its session's mean activity (the reference initialised twice, re-drawing random
    parameters). With ``clone_readout=True`` the first session gets a full readout and every further session a
    :class:`ClonedReadout` of it (same neuron count required).
    """

    _base_readout_cls: type[Readout] | None = None

    def __init__(
        self,
        in_shape: Sequence[int],
        n_neurons_dict: Mapping[str, int],
        base_readout: type[Readout] | None = None,
        mean_activity_dict: Mapping[str, torch.Tensor] | None = None,
        clone_readout: bool = False,
        readout_reg_avg: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        readout_cls = base_readout if base_readout is not None else self._base_readout_cls
        if readout_cls is None:
            raise ValueError(f"{type(self).__name__}: pass base_readout (a Readout subclass) to build the readouts.")
        self.base_readout = readout_cls
        self._in_shape = tuple(int(s) for s in in_shape)
        self._readout_kwargs = dict(kwargs)
        self.clone_readout = clone_readout
        self.readout_reg_avg = readout_reg_avg
        self.readout_reg_reduction: Reduction = "mean" if readout_reg_avg else "sum"
        self._add_sessions(n_neurons_dict, mean_activity_dict)

    def _add_sessions(
        self,
        n_neurons_dict: Mapping[str, int],
        mean_activity_dict: Mapping[str, torch.Tensor] | None = None,
        per_session_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        duplicates = sorted(set(n_neurons_dict) & set(self.keys()))
        if duplicates:
            raise ValueError(
                f"{type(self).__name__}: sessions {duplicates} already have a readout; use new session names."
            )
        mean_activity_dict = mean_activity_dict or {}
        per_session_kwargs = per_session_kwargs or {}
        for session, n_neurons in n_neurons_dict.items():
            if self.clone_readout and len(self) > 0:
                self[session] = self._clone_first_readout(session, int(n_neurons))
                continue
            self[session] = self.base_readout(
                in_shape=self._in_shape,
                outdims=int(n_neurons),
                mean_activity=mean_activity_dict.get(session),
                **self._readout_kwargs,
                **per_session_kwargs.get(session, {}),
            )

    def _clone_first_readout(self, session: str, n_neurons: int) -> ClonedReadout:
        source = self[next(iter(self.keys()))]
        if source.number_of_neurons() != n_neurons:
            raise DataShapeError(
                f"{type(self).__name__}: clone_readout needs equal neuron counts, but session {session!r} has "
                f"{n_neurons} neurons and the first session {source.number_of_neurons()}."
            )
        return ClonedReadout(source)

    def add_sessions(
        self, n_neurons_dict: Mapping[str, int], mean_activity_dict: Mapping[str, torch.Tensor] | None = None
    ) -> None:
        """Add a readout for each new session, built with the stored keyword arguments."""
        self._add_sessions(n_neurons_dict, mean_activity_dict)

    def initialize(self, mean_activity_dict: Mapping[str, torch.Tensor] | None = None) -> None:
        """Re-initialise every session's readout (construction already does this once)."""
        mean_activity_dict = mean_activity_dict or {}
        for session, readout in self._readout_items():
            readout.initialize(mean_activity_dict.get(session))

    def __getitem__(self, key: str) -> Readout:
        if key not in self._modules:
            raise UnknownSessionError(
                f"{type(self).__name__}: no readout for session {key!r}; known sessions: {self.readout_keys()}."
            )
        return self._modules[key]  # type: ignore[return-value]

    def __setitem__(self, key: str, module: nn.Module) -> None:
        if not isinstance(module, Readout):
            raise TypeError(
                f"{type(self).__name__}: session {key!r} must map to a Readout, got {type(module).__name__}."
            )
        super().__setitem__(key, module)

    def _readout_items(self) -> list[tuple[str, Readout]]:
        return [(key, self[key]) for key in self.keys()]

    def readout_keys(self) -> list[str]:
        """Session names, sorted (the order of the no-key concatenation)."""
        return sorted(self.keys())

    @property
    def sessions(self) -> list[str]:
        """Session names, sorted."""
        return self.readout_keys()

    def _session_forward(self, data_key: str, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self[data_key](*args, **kwargs)

    def forward(self, *args: Any, data_key: str | None = None, **kwargs: Any) -> torch.Tensor:
        """Input: (batch, channels, time, height, width). Output: (batch, time, neurons)."""
        if data_key is not None:
            return self._session_forward(data_key, *args, **kwargs)
        warnings.warn(
            f"{type(self).__name__}: no data_key given; returning all sessions concatenated along the neuron axis "
            f"in the order {self.readout_keys()}.",
            UserWarning,
            stacklevel=2,
        )
        return torch.cat([self._session_forward(key, *args, **kwargs) for key in self.readout_keys()], dim=-1)

    def regularizer(self, data_key: str | None = None, reduction: Reduction = None) -> torch.Tensor:
        """Penalty of one session's readout.

        ``reduction`` defaults to ``"mean"`` if ``readout_reg_avg`` else ``"sum"``.
        """
        if data_key is None:
            if len(self) != 1:
                raise ValueError(
                    f"{type(self).__name__}: pass data_key to regularizer(); there are {len(self)} sessions: "
                    f"{self.readout_keys()}."
                )
            data_key = next(iter(self.keys()))
        return self[data_key].regularizer(reduction=reduction or self.readout_reg_reduction)

    def apply_constraints(self) -> None:
        """Project every session's parameters onto their allowed set (call after an optimiser step)."""
        for _, readout in self._readout_items():
            readout.apply_constraints()

    def save_weight_visualizations(
        self, folder_path: str | Path, file_format: str = "jpg", state_suffix: str = ""
    ) -> None:
        """Write each session's neuron plots into ``folder_path/<session>/``."""
        for session, readout in self._readout_items():
            readout.save_weight_visualizations(Path(folder_path) / session, file_format, state_suffix)


class MultiGaussianMaskReadout(MultiReadoutBase):
    """A :class:`GaussianMaskReadout` (softplus output) per session.

    Input: (batch, channels, time, height, width). Output: (batch, time, neurons).
    """

    _base_readout_cls = GaussianMaskReadout

    def __init__(
        self,
        in_shape: Sequence[int],
        n_neurons_dict: Mapping[str, int],
        scale: bool,
        bias: bool,
        gaussian_mean_scale: float,
        gaussian_var_scale: float,
        positive: bool,
        mask_l1_reg: float = 1.0,
        feature_weights_l1_reg: float = 1.0,
        readout_reg_avg: bool = False,
        mean_activity_dict: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(
            in_shape,
            n_neurons_dict,
            mean_activity_dict=mean_activity_dict,
            readout_reg_avg=readout_reg_avg,
            scale=scale,
            bias=bias,
            gaussian_mean_scale=gaussian_mean_scale,
            gaussian_var_scale=gaussian_var_scale,
            positive=positive,
            mask_l1_reg=mask_l1_reg,
            feature_weights_l1_reg=feature_weights_l1_reg,
        )


class MultiFactorizedReadout(MultiReadoutBase):
    """A :class:`FactorizedReadout` per session, with the mask size taken from ``in_shape[2:]``.

    Input: (batch, channels, time, height, width). Output: (batch, time, neurons).
    """

    _base_readout_cls = FactorizedReadout

    def __init__(
        self,
        in_shape: Sequence[int],
        n_neurons_dict: Mapping[str, int],
        mask_l1_reg: float,
        weights_l1_reg: float,
        laplace_mask_reg: float,
        readout_bias: bool = False,
        weights_constraint: WeightsConstraint = None,
        mask_constraint: MaskConstraint = None,
        init_mask: torch.Tensor | None = None,
        init_weights: torch.Tensor | None = None,
        init_scales: Sequence[Sequence[float]] | None = None,
        readout_reg_avg: bool = False,
        mean_activity_dict: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(
            in_shape,
            n_neurons_dict,
            mean_activity_dict=mean_activity_dict,
            readout_reg_avg=readout_reg_avg,
            mask_l1_reg=mask_l1_reg,
            weights_l1_reg=weights_l1_reg,
            laplace_mask_reg=laplace_mask_reg,
            mask_size=tuple(int(s) for s in in_shape[2:]),
            readout_bias=readout_bias,
            weights_constraint=weights_constraint,
            mask_constraint=mask_constraint,
            init_mask=init_mask,
            init_weights=init_weights,
            init_scales=init_scales,
        )


class MultiSampledGaussianReadout(MultiReadoutBase):
    """A :class:`PointGaussianReadout` per session, applied frame by frame, then ``nonlinearity_function``.

    Input: (batch, channels, time, height, width). Output: (batch, time, neurons).
    ``gamma`` is the feature-L1 weight (``gamma_readout``) and ``reg_avg`` the ``readout_reg_avg`` flag.
    """

    _base_readout_cls = PointGaussianReadout

    def __init__(
        self,
        in_shape: Sequence[int],
        n_neurons_dict: Mapping[str, int],
        bias: bool,
        init_mu_range: float,
        init_sigma_range: float,
        batch_sample: bool = True,
        align_corners: bool = True,
        gauss_type: GaussType = "full",
        grid_mean_predictor: Mapping[str, Any] | None = None,
        shared_features: Mapping[str, Any] | None = None,
        shared_grid: Mapping[str, Any] | None = None,
        init_grid: torch.Tensor | None = None,
        gamma: float = 1.0,
        reg_avg: bool = False,
        nonlinearity_function: Callable[[torch.Tensor], torch.Tensor] = F.softplus,
        mean_activity_dict: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(
            in_shape,
            n_neurons_dict,
            mean_activity_dict=mean_activity_dict,
            readout_reg_avg=reg_avg,
            bias=bias,
            init_mu_range=init_mu_range,
            init_sigma_range=init_sigma_range,
            batch_sample=batch_sample,
            align_corners=align_corners,
            gauss_type=gauss_type,
            grid_mean_predictor=grid_mean_predictor,
            shared_features=shared_features,
            shared_grid=shared_grid,
            init_grid=init_grid,
            gamma_readout=gamma,
        )
        self.nonlinearity_function = nonlinearity_function

    def _session_forward(self, data_key: str, *args: Any, **kwargs: Any) -> torch.Tensor:
        x, *rest = args
        if x.dim() != 5:
            raise DataShapeError(
                f"{type(self).__name__}: expected core features (batch, channels, time, height, width), "
                f"got {tuple(x.shape)}."
            )
        return self.nonlinearity_function(self[data_key](x, *rest, **kwargs))


class MultipleLNPReadout(MultiReadoutBase):
    """An :class:`LNPReadout` per session; keyword arguments are passed to every readout.

    Input: (batch, channels, time, height, width). Output: (batch, time, neurons).
    """

    _base_readout_cls = LNPReadout

    def __init__(self, in_shape: Sequence[int], n_neurons_dict: Mapping[str, int], **kwargs: Any) -> None:
        super().__init__(in_shape, n_neurons_dict, **kwargs)
