"""Base class of all readouts, plus the per-neuron rescaled clone used to share one readout across sessions.

A readout maps core features ``(batch, channels, time, height, width)`` to responses ``(batch, time, neurons)``.
:class:`Readout` has no abstract methods: a subclass that only defines ``__init__`` and ``forward`` works
everywhere a readout is expected (its regulariser is 0, its neuron count is read from ``outdims`` /
``num_neurons`` / ``bias``, and its weight plot falls back to a generic one).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
from torch import nn

from openretina.errors import DataShapeError, NonFiniteDataError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ClonedReadout", "Readout", "Reduction"]

Reduction = Literal["sum", "mean"] | None
"""How a penalty is aggregated over its elements: ``"sum"``, ``"mean"`` or ``None`` (no aggregation)."""


class Readout(nn.Module):
    """Maps core features to neural responses of one recording session.

    Input: (batch, channels, time, height, width) core features.
    Output: (batch, time, neurons).

    Subclasses usually hold a ``features`` weight and a ``bias`` of shape ``(neurons,)``; both are optional.
    Override :meth:`regularizer` to add a penalty to the training loss, and :meth:`_plot_weight_for_neuron` for
    a specific weight visualisation.
    """

    def initialize(self, mean_activity: torch.Tensor | None = None) -> None:
        """(Re-)initialise the readout; the base version only sets the bias from ``mean_activity`` if there is one."""
        if isinstance(getattr(self, "bias", None), torch.Tensor):
            self.initialize_bias(mean_activity)

    def regularizer(self, reduction: Reduction = "sum") -> torch.Tensor:
        """Penalty added to the training loss. The base readout is unregularised and returns 0."""
        reference = next(iter(self.parameters()), None)
        return torch.zeros((), device=None if reference is None else reference.device)

    def apply_constraints(self) -> None:
        """Project parameters onto their allowed set, in place (e.g. non-negative weights).

        ``forward`` never changes parameters; it applies constraints to a functional copy. Call this after each
        optimiser step to keep the stored parameters feasible as well (projected gradient descent). The base
        readout has no constraints.
        """

    @staticmethod
    def apply_reduction(x: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
        """Aggregate ``x`` with ``"mean"``, ``"sum"`` or not at all (``None``)."""
        if reduction == "mean":
            return x.mean()
        if reduction == "sum":
            return x.sum()
        if reduction is None:
            return x
        raise ValueError(f"reduction must be 'mean', 'sum' or None, got {reduction!r}.")

    def initialize_bias(self, mean_activity: torch.Tensor | Sequence[float] | None = None) -> None:
        """Set the bias to the mean response of each neuron, or to 0 (with a warning) when none is given.

        The values are copied into the existing bias, so the caller's tensor is never aliased. A non-trainable
        bias buffer receives the mean activity too (as in the reference), i.e. it becomes a fixed offset.
        """
        bias = getattr(self, "bias", None)
        if not isinstance(bias, torch.Tensor):
            return
        with torch.no_grad():
            if mean_activity is None:
                warnings.warn(
                    f"{type(self).__name__}: readout bias not initialized with mean activity; using zeros.",
                    UserWarning,
                    stacklevel=2,
                )
                bias.fill_(0.0)
                return
            values = torch.as_tensor(mean_activity, dtype=bias.dtype).to(bias.device)
            if values.shape != bias.shape:
                raise DataShapeError(
                    f"{type(self).__name__}: mean_activity has shape {tuple(values.shape)}, expected "
                    f"{tuple(bias.shape)} (one value per neuron). Pass the session's mean response per neuron."
                )
            if not torch.isfinite(values).all():
                raise NonFiniteDataError(
                    f"{type(self).__name__}: mean_activity contains NaN or infinite values; "
                    "check the responses the mean was computed from."
                )
            bias.copy_(values)

    def number_of_neurons(self) -> int:
        """Number of output neurons, read from ``outdims``, ``num_neurons``, ``n_neurons`` or the bias length."""
        for name in ("outdims", "num_neurons", "n_neurons"):
            value = getattr(self, name, None)
            if isinstance(value, int):
                return value
        bias = getattr(self, "bias", None)
        if isinstance(bias, torch.Tensor) and bias.dim() == 1:
            return int(bias.shape[0])
        raise NotImplementedError(
            f"{type(self).__name__}: cannot tell the number of neurons; set `self.outdims` or override "
            "`number_of_neurons()`."
        )

    def _plot_weight_for_neuron(self, neuron_id: int, axes: Sequence[Axes], add_titles: bool) -> None:
        """Draw the weights of one neuron on two axes. Generic fallback: the feature weights, if any."""
        axes[0].axis("off")
        axes[0].text(0.5, 0.5, "no spatial weights", ha="center", va="center", transform=axes[0].transAxes)
        features = getattr(self, "features", None)
        if isinstance(features, torch.Tensor) and features.shape[-1] == self.number_of_neurons():
            weights = features.detach().reshape(-1, features.shape[-1])[:, neuron_id].cpu().numpy()
            axes[1].bar(range(len(weights)), weights)
        if add_titles:
            axes[1].set_title("Feature weights")

    def plot_weight_for_neuron(
        self,
        neuron_id: int,
        axes: Sequence[Axes] | None = None,
        remove_readout_ticks: bool = False,
        add_titles: bool = True,
    ) -> Figure:
        """Plot the readout weights of neuron ``neuron_id`` on two axes (new 1×2 figure when ``axes`` is None)."""
        n_neurons = self.number_of_neurons()
        if not 0 <= neuron_id < n_neurons:
            raise IndexError(f"{type(self).__name__}: neuron_id {neuron_id} out of range [0, {n_neurons}).")
        if axes is None:
            import matplotlib.pyplot as plt

            figure, axes_array = plt.subplots(ncols=2, figsize=(8, 4))
            axes = list(axes_array)
        else:
            figure = cast("Figure", axes[0].get_figure())
        self._plot_weight_for_neuron(neuron_id, axes, add_titles)
        if remove_readout_ticks:
            for ax in axes:
                ax.set_xticks([])
                ax.set_yticks([])
        return figure

    def save_weight_visualizations(
        self,
        folder_path: str | Path,
        file_format: str = "jpg",
        state_suffix: str = "",
        cell_indices: Sequence[int] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Write ``neuron_{id}[_{state_suffix}].{file_format}`` (dpi 300) for every neuron or ``cell_indices``."""
        import matplotlib.pyplot as plt

        folder = Path(folder_path)
        folder.mkdir(parents=True, exist_ok=True)
        indices = range(self.number_of_neurons()) if cell_indices is None else cell_indices
        suffix = f"_{state_suffix}" if state_suffix else ""
        for neuron_id in indices:
            figure = self.plot_weight_for_neuron(neuron_id, *args, **kwargs)
            figure.savefig(folder / f"neuron_{neuron_id}{suffix}.{file_format}", dpi=300)
            plt.close(figure)


class ClonedReadout(Readout):
    """Another session's readout, reused with a per-neuron gain ``alpha`` and offset ``beta``.

    Input/Output: those of the wrapped readout; the output is ``source(x) * alpha + beta`` with ``alpha``,
    ``beta`` of shape ``(neurons,)``. The wrapped readout's parameters are shared (they appear again in the
    state_dict under ``_source.``).
    """

    def __init__(self, original_readout: Readout, **kwargs: Any) -> None:
        super().__init__()
        self._source = original_readout
        n_neurons = original_readout.number_of_neurons()
        self.alpha = nn.Parameter(torch.ones(n_neurons))
        self.beta = nn.Parameter(torch.zeros(n_neurons))

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Output of the wrapped readout, rescaled per neuron. Layout as in the wrapped readout."""
        return self._source(x, *args, **kwargs) * self.alpha + self.beta

    def initialize(self, mean_activity: torch.Tensor | None = None, **kwargs: Any) -> None:
        """Reset gain to 1 and offset to 0 (the shared source keeps its own initialisation)."""
        with torch.no_grad():
            self.alpha.fill_(1.0)
            self.beta.fill_(0.0)

    def feature_l1(self, average: bool = True) -> torch.Tensor:
        """L1 norm of the effective feature weights ``source.features * alpha`` (mean or sum)."""
        features = self._source.features
        if not isinstance(features, torch.Tensor):
            raise TypeError(f"ClonedReadout: the wrapped {type(self._source).__name__} has no `features` tensor.")
        effective = features * self.alpha
        return effective.abs().mean() if average else effective.abs().sum()

    def regularizer(self, reduction: Reduction = "sum") -> torch.Tensor:
        """L1 penalty on the effective (rescaled) feature weights."""
        return self.feature_l1(average=reduction == "mean")

    def number_of_neurons(self) -> int:
        """Number of neurons of the wrapped readout."""
        return self._source.number_of_neurons()
