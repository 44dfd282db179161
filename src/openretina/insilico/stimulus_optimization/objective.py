"""Response reducers and objectives: what a stimulus optimisation maximises.

Layouts. A model maps a stimulus batch ``(batch, channels, time, height, width)`` to responses
``(batch, time_out, neurons)``. Reducers are written for the response of **one** stimulus, ``(time_out, neurons)``
or ``(time_out,)``, so ``axis=0`` is always time; objectives apply them to every stimulus of a batch separately.

An objective's :meth:`~PerStimulusObjective.per_stimulus` returns one score per stimulus, ``(batch,)``, and
``forward`` / ``__call__`` return their sum (a 0-d tensor, the score to *maximise*). Because the batch score is a
sum of independent per-stimulus scores, each stimulus of a batch receives exactly the gradient it would receive
if optimised alone: one call optimises many neurons or many random starts at once.

Two spellings of the same API are accepted (the reference API and the published documentation's):

* ``IncreaseObjective(model, neuron_indices=[10], data_key=..., response_reducer=SliceMeanReducer(axis=0, ...))``:
  the objective averages the chosen neurons, then the reducer collapses time.
* ``IncreaseObjective(model=model, reducer=MeanReducer(neuron_dim=1, indices=5))``: the reducer receives the
  whole ``(time_out, neurons)`` response, picks the neurons itself and averages everything that is left.

Differences from the reference:

* Responses are indexed on an explicit neuron axis, never through ``squeeze(0)``, so batches of any size work
  (:meth:`AbstractObjective.model_forward` returns ``(batch, time_out, neurons)`` even for one stimulus).
* :class:`SliceMeanReducer` warns (:class:`ResponseWindowWarning`) instead of silently moving or shortening a window
  that does not fit the response; a negative ``start`` counts from the end of the response.
* An empty response (stimulus too short) raises :class:`~openretina.errors.InsufficientFramesError` instead of
  averaging to NaN.
* The model runs only on the input frames that can reach the frames a windowed reducer reads
  (:meth:`AbstractObjective.model_forward_for`, verified once per stimulus shape), so the reference MEI recipe,
  which reads 10 of 20 output frames, skips a fifth of the input and half of the last layer's output.
* Reducers and objectives are callable; :class:`InnerNeuronVisualizationObjective` hooks only the chosen layer and
  only for the duration of one forward pass, and the unit's position is selectable.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from openretina.errors import DataShapeError, InsufficientFramesError

__all__ = [
    "AbstractObjective",
    "ContrastiveNeuronObjective",
    "IncreaseObjective",
    "InnerNeuronVisualizationObjective",
    "JitteredObjective",
    "MeanReducer",
    "PerStimulusObjective",
    "ResponseReducer",
    "ResponseWindowWarning",
    "SliceMeanReducer",
]


class ResponseWindowWarning(UserWarning):
    """A :class:`SliceMeanReducer` window did not fit the response and was moved or shortened."""


# ------------------------------------------------------------------------------------------------------ reducers
class ResponseReducer(ABC):
    """Collapses the response of one stimulus to a score.

    ``forward(responses)`` takes one stimulus' response (``axis`` counts in that layout, 0 = time);
    :meth:`forward_batch` applies the same reduction to every stimulus of ``(batch, ...)`` at once.
    """

    def __init__(self, axis: int = 0) -> None:
        self._axis = axis

    @abstractmethod
    def _reduce(self, responses: torch.Tensor, batched: bool) -> torch.Tensor:
        """Reduce ``responses``, which carry a leading batch axis if ``batched``."""

    def forward(self, responses: torch.Tensor) -> torch.Tensor:
        """Reduce the response of one stimulus, e.g. ``(time_out,)`` or ``(time_out, neurons)``."""
        return self._reduce(responses, batched=False)

    def forward_batch(self, responses: torch.Tensor) -> torch.Tensor:
        """Reduce every stimulus of ``(batch, ...)`` separately; the result keeps the batch axis first."""
        return self._reduce(responses, batched=True)

    def __call__(self, responses: torch.Tensor) -> torch.Tensor:
        return self.forward(responses)

    def time_window(self, response_length: int) -> tuple[int, int] | None:
        """``(start, stop)``: the only response frames the reduction reads, or None if it may read any frame."""
        return None

    def _batch_axis(self, responses: torch.Tensor, axis: int, batched: bool) -> int:
        """Translate a per-stimulus ``axis`` into an axis of ``responses`` and check it exists."""
        per_stimulus_ndim = responses.dim() - int(batched)
        if not -per_stimulus_ndim <= axis < per_stimulus_ndim:
            raise DataShapeError(
                f"{type(self).__name__}: axis {axis} does not exist in a per-stimulus response with "
                f"{per_stimulus_ndim} dims (full shape {tuple(responses.shape)}, batched={batched})."
            )
        axis %= per_stimulus_ndim
        return axis + int(batched)


def _check_not_empty(responses: torch.Tensor, axis: int, owner: str) -> None:
    if responses.shape[axis] == 0:
        raise InsufficientFramesError(
            f"{owner}: the response has length 0 along axis {axis} (shape {tuple(responses.shape)}); the stimulus "
            "is too short for the model. Give at least model.number_of_cut_frames() + 1 time steps."
        )


class MeanReducer(ResponseReducer):
    """Mean of one stimulus' response over ``axis``; or, with ``indices``, the mean over the chosen neurons.

    * ``MeanReducer(axis=0)`` (reference spelling): mean over time, ``(time_out, ...)`` -> ``(...)``.
    * ``MeanReducer(neuron_dim=1, indices=5)`` (documentation spelling): select ``indices`` along ``neuron_dim``
      of the ``(time_out, neurons)`` response and average *all* remaining values, giving a scalar per stimulus.
    """

    def __init__(
        self, axis: int = 0, neuron_dim: int | None = None, indices: int | Sequence[int] | None = None
    ) -> None:
        super().__init__(axis)
        if neuron_dim is not None and indices is None:
            raise ValueError("MeanReducer: neuron_dim was given without indices; pass indices=<neuron index or list>.")
        self.neuron_dim = 1 if neuron_dim is None else neuron_dim
        self.indices: list[int] | None = None if indices is None else _as_index_list(indices)

    def _reduce(self, responses: torch.Tensor, batched: bool) -> torch.Tensor:
        if self.indices is None:
            axis = self._batch_axis(responses, self._axis, batched)
            _check_not_empty(responses, axis, repr(self))
            return responses.mean(dim=axis)
        neuron_axis = self._batch_axis(responses, self.neuron_dim, batched)
        selected = _select_neurons(responses, self.indices, neuron_axis, repr(self))
        _check_not_empty(selected, 1 if batched else 0, repr(self))
        return selected.flatten(start_dim=int(batched)).mean(dim=-1)

    def __repr__(self) -> str:
        if self.indices is None:
            return f"MeanReducer(axis={self._axis})"
        return f"MeanReducer(neuron_dim={self.neuron_dim}, indices={self.indices})"


class SliceMeanReducer(ResponseReducer):
    """Mean of one stimulus' response over the window ``[start, start + length)`` of ``axis``.

    A negative ``start`` counts from the end: ``SliceMeanReducer(axis=0, start=-10, length=10)`` averages the last
    10 output frames whatever the stimulus length. A window that does not fit is handled as the reference does
    (one running past the end is shortened; one starting past the end falls back to the first ``length`` frames),
    but with a :class:`ResponseWindowWarning` naming the requested window and the response length.
    """

    def __init__(self, axis: int, start: int, length: int) -> None:
        super().__init__(axis)
        if length <= 0:
            raise ValueError(f"SliceMeanReducer: length must be positive, got {length}.")
        self.start = start
        self.length = length

    def window(self, response_length: int) -> tuple[int, int]:
        """``(first index, number of frames)`` actually averaged for a response of ``response_length`` frames."""
        start, length, action = self._fit(response_length)
        if action is not None:
            self._warn(response_length, action)
        return start, length

    def time_window(self, response_length: int) -> tuple[int, int] | None:
        """The averaged frames as ``(start, stop)`` when this reducer averages over time (axis 0), else None."""
        if self._axis != 0:
            return None
        start, length, _ = self._fit(response_length)
        return start, start + length

    def _fit(self, response_length: int) -> tuple[int, int, str | None]:
        """The window fitted to the response, and what was changed to make it fit (None: nothing)."""
        start = self.start + response_length if self.start < 0 else self.start
        if 0 <= start < response_length:
            length = min(self.length, response_length - start)
            action = f"shortened to {length} frames [{start}, {start + length})" if length < self.length else None
            return start, length, action
        fallback = min(self.length, response_length)
        return 0, fallback, f"falling back to the first {fallback} frames [0, {fallback})"

    def _warn(self, response_length: int, action: str) -> None:
        warnings.warn(
            f"{self!r}: the window [{self.start}, {self.start} + {self.length}) does not fit a response of "
            f"{response_length} frames; {action}. Use a longer stimulus, a smaller start, or a negative start to "
            "count from the end of the response.",
            ResponseWindowWarning,
            stacklevel=4,
        )

    def _reduce(self, responses: torch.Tensor, batched: bool) -> torch.Tensor:
        axis = self._batch_axis(responses, self._axis, batched)
        _check_not_empty(responses, axis, repr(self))
        start, length = self.window(responses.shape[axis])
        return responses.narrow(axis, start, length).mean(dim=axis)

    def __repr__(self) -> str:
        return f"SliceMeanReducer(axis={self._axis}, start={self.start}, length={self.length})"


def _as_index_list(indices: int | Sequence[int]) -> list[int]:
    return [int(indices)] if isinstance(indices, int) else [int(i) for i in indices]


def _select_neurons(responses: torch.Tensor, indices: Sequence[int], axis: int, owner: str) -> torch.Tensor:
    """``responses`` restricted to ``indices`` along ``axis``, with a clear error for out-of-range indices."""
    num_neurons = responses.shape[axis]
    bad = [i for i in indices if not -num_neurons <= i < num_neurons]
    if bad or not indices:
        raise DataShapeError(
            f"{owner}: neuron indices {list(indices)} are invalid for a response with {num_neurons} neurons "
            f"(axis {axis} of shape {tuple(responses.shape)}); expected a non-empty list in [0, {num_neurons})."
        )
    positions = torch.tensor([i % num_neurons for i in indices], device=responses.device)  # negatives count back
    return responses.index_select(axis, positions)


# ---------------------------------------------------------------------------------------------------- objectives
class AbstractObjective(ABC):
    """Base of all objectives: holds the model and the session key (``data_key``; None = all sessions).

    ``forward(stimulus)`` returns the 0-d score to maximise. ``model`` may be None for objectives that do not
    use one.
    """

    def __init__(self, model: nn.Module | None, data_key: str | None = None) -> None:
        self._model = model
        self._data_key = data_key
        # Per (stimulus shape, window): whether running the model on the window's input frames only is exact.
        self._window_is_exact: dict[tuple[object, ...], bool] = {}
        # The model's lag, asked once: models without a stored value measure it with probe forward passes.
        self._cut_frames: int | None = None

    @property
    def model(self) -> nn.Module | None:
        """The model this objective evaluates (None for model-free objectives)."""
        return self._model

    def model_forward(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Model responses. Input: (batch, channels, time, height, width). Output: (batch, time_out, neurons)."""
        if self._model is None:
            raise ValueError(f"{type(self).__name__}: no model was given, so model_forward cannot run.")
        if self._data_key is None:
            return self._model(stimulus)
        return self._model(stimulus, data_key=self._data_key)

    def model_forward_for(self, stimulus: torch.Tensor, reducer: ResponseReducer) -> torch.Tensor:
        """:meth:`model_forward`, computing only the response frames ``reducer`` reads; the others are zeros.

        Output frame ``t`` of a model without recurrence or temporal padding depends on input frames
        ``[t, t + cut]`` only (``cut = model.number_of_cut_frames()``). When the reducer reads a window of
        frames, the model runs on the input frames that reach that window, so the unread frames cost nothing
        (the reference MEI recipe reads 10 of 20 frames). Whether the model really is time-local is checked
        once per stimulus shape by comparing with a full run; models that fail the check (recurrent cores,
        temporal padding) and models in training mode always run in full.
        Input: (batch, channels, time, height, width). Output: (batch, time_out, neurons).
        """
        model = self._model
        cut_frames = getattr(model, "number_of_cut_frames", None)
        if model is None or model.training or not callable(cut_frames):
            return self.model_forward(stimulus)
        if self._cut_frames is None:
            self._cut_frames = int(cut_frames())
        cut = self._cut_frames
        response_length = stimulus.shape[2] - cut
        window = reducer.time_window(response_length) if response_length > 0 else None
        if window is None or window == (0, response_length):
            return self.model_forward(stimulus)
        start, stop = window
        cropped = stimulus[:, :, start : stop + cut]
        key = (tuple(stimulus.shape), start, stop)
        if key not in self._window_is_exact:
            with torch.no_grad():
                full, part = self.model_forward(stimulus)[:, start:stop], self.model_forward(cropped)
            scale = float(full.abs().max()) if full.numel() else 0.0
            self._window_is_exact[key] = part.shape == full.shape and torch.allclose(
                part, full, rtol=1e-4, atol=1e-5 * scale
            )
        if not self._window_is_exact[key]:
            return self.model_forward(stimulus)
        return F.pad(self.model_forward(cropped), (0, 0, start, response_length - stop))

    @abstractmethod
    def forward(self, stimulus: torch.Tensor) -> torch.Tensor:
        """0-d score to maximise for the stimulus batch (batch, channels, time, height, width)."""

    def __call__(self, stimulus: torch.Tensor) -> torch.Tensor:
        return self.forward(stimulus)


class PerStimulusObjective(AbstractObjective):
    """An objective whose batch score is the sum of independent per-stimulus scores (see the module docs)."""

    @abstractmethod
    def per_stimulus(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Scores ``(batch,)`` of the stimulus batch (batch, channels, time, height, width)."""

    def forward(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Sum of :meth:`per_stimulus` over the batch (0-d)."""
        return self.per_stimulus(stimulus).sum()


def _pick_reducer(
    owner: str, response_reducer: ResponseReducer | None, reducer: ResponseReducer | None
) -> ResponseReducer:
    """Accept either spelling (``response_reducer`` = reference, ``reducer`` = documentation), not both."""
    if response_reducer is not None and reducer is not None:
        raise ValueError(f"{owner}: pass either response_reducer or reducer (the same argument), not both.")
    chosen = response_reducer if response_reducer is not None else reducer
    return MeanReducer(axis=0) if chosen is None else chosen


def _check_scores(scores: torch.Tensor, batch: int, owner: str, hint: str) -> torch.Tensor:
    if scores.shape != (batch,):
        raise DataShapeError(
            f"{owner}: expected one score per stimulus, shape ({batch},), but the reducer produced "
            f"{tuple(scores.shape)}. {hint}"
        )
    return scores


class IncreaseObjective(PerStimulusObjective):
    """Mean response of a neuron group, reduced over time: the MEI objective.

    With ``neuron_indices``: mean over those neurons, then ``response_reducer`` over time (axis 0). Without:
    the reducer receives each stimulus' whole ``(time_out, neurons)`` response and must return a scalar
    (e.g. ``MeanReducer(neuron_dim=1, indices=...)``). ``reducer`` is an alias of ``response_reducer``;
    the default reducer is the mean over time. ``one_neuron_per_stimulus=True`` optimises many MEIs at once:
    stimulus ``b`` of the batch drives neuron ``neuron_indices[b]`` alone (the batch size must match).
    Input: (batch, channels, time, height, width). ``per_stimulus`` output: (batch,).
    """

    def __init__(
        self,
        model: nn.Module | None,
        neuron_indices: int | Sequence[int] | None = None,
        data_key: str | None = None,
        response_reducer: ResponseReducer | None = None,
        *,
        reducer: ResponseReducer | None = None,
        one_neuron_per_stimulus: bool = False,
    ) -> None:
        super().__init__(model, data_key)
        self._neuron_indices = None if neuron_indices is None else _as_index_list(neuron_indices)
        self._response_reducer = _pick_reducer("IncreaseObjective", response_reducer, reducer)
        if one_neuron_per_stimulus and self._neuron_indices is None:
            raise ValueError("IncreaseObjective: one_neuron_per_stimulus=True needs neuron_indices (one per stimulus).")
        self._one_neuron_per_stimulus = one_neuron_per_stimulus

    @property
    def neuron_indices(self) -> list[int] | None:
        """The neurons whose mean response is increased (None: the reducer selects them)."""
        return self._neuron_indices

    def per_stimulus(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Reduced group response per stimulus, ``(batch,)``."""
        responses = self.model_forward_for(stimulus, self._response_reducer)
        if self._one_neuron_per_stimulus:
            responses = self._neuron_of_each_stimulus(responses)
        elif self._neuron_indices is not None:
            responses = _select_neurons(responses, self._neuron_indices, 2, "IncreaseObjective").mean(dim=2)
        scores = self._response_reducer.forward_batch(responses)
        return _check_scores(
            scores,
            stimulus.shape[0],
            "IncreaseObjective",
            "Pass neuron_indices, or a reducer that selects neurons, e.g. MeanReducer(neuron_dim=1, indices=[5]).",
        )

    def _neuron_of_each_stimulus(self, responses: torch.Tensor) -> torch.Tensor:
        """``(batch, time_out)``: the response of neuron ``neuron_indices[b]`` to stimulus ``b``."""
        indices = self._neuron_indices or []
        if len(indices) != responses.shape[0]:
            raise DataShapeError(
                f"IncreaseObjective: one_neuron_per_stimulus=True needs one neuron per stimulus, but "
                f"{len(indices)} neuron indices were given for a batch of {responses.shape[0]} stimuli. Build the "
                "stimulus with model.stimulus_shape(time_steps, num_batches=len(neuron_indices))."
            )
        _select_neurons(responses, indices, 2, "IncreaseObjective")  # range check with a clear message
        index = torch.tensor(indices, device=responses.device) % responses.shape[2]
        return responses.gather(2, index.reshape(-1, 1, 1).expand(-1, responses.shape[1], 1)).squeeze(2)


class ContrastiveNeuronObjective(PerStimulusObjective):
    """Most discriminative stimulus (MDS, Burg et al., ICLR 2024): favour one cluster of neurons over others.

    Per stimulus, each neuron's response is reduced over time, each cluster is averaged, and the score is the
    log-softmax of the "on" cluster among all clusters at ``temperature``, plus ``log(K + 1)`` for ``K`` off
    clusters, so a stimulus that drives every cluster equally scores 0.
    Input: (batch, channels, time, height, width). ``per_stimulus`` output: (batch,).
    """

    def __init__(
        self,
        model: nn.Module | None,
        on_cluster_idc: Sequence[int],
        off_cluster_idc_list: Sequence[Sequence[int]],
        data_key: str | None = None,
        response_reducer: ResponseReducer | None = None,
        temperature: float = 1.6,
        *,
        reducer: ResponseReducer | None = None,
    ) -> None:
        super().__init__(model, data_key)
        if not off_cluster_idc_list:
            raise ValueError("ContrastiveNeuronObjective: off_cluster_idc_list needs at least one cluster.")
        if temperature <= 0:
            raise ValueError(f"ContrastiveNeuronObjective: temperature must be positive, got {temperature}.")
        self._on_cluster_idc = _as_index_list(on_cluster_idc)
        self._off_cluster_idc_list = [_as_index_list(c) for c in off_cluster_idc_list]
        self._response_reducer = _pick_reducer("ContrastiveNeuronObjective", response_reducer, reducer)
        self._temperature = temperature

    @staticmethod
    def contrastive_objective(on_score: torch.Tensor, all_scores: torch.Tensor, temperature: float) -> torch.Tensor:
        """``on/t - logsumexp(all/t) + log(K+1)`` over the last axis of ``all_scores`` (``K+1`` clusters)."""
        num_clusters = all_scores.shape[-1]
        return on_score / temperature - torch.logsumexp(all_scores / temperature, dim=-1) + math.log(num_clusters)

    def per_stimulus(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Contrastive score per stimulus, ``(batch,)``."""
        responses = self.model_forward_for(stimulus, self._response_reducer)
        per_neuron = self._response_reducer.forward_batch(responses)  # (batch, neurons)
        if per_neuron.dim() != 2:
            raise DataShapeError(
                f"ContrastiveNeuronObjective: the reducer must collapse time only, leaving (batch, neurons); got "
                f"{tuple(per_neuron.shape)}. Use e.g. SliceMeanReducer(axis=0, ...) or MeanReducer(axis=0)."
            )
        clusters = [self._on_cluster_idc, *self._off_cluster_idc_list]
        owner = "ContrastiveNeuronObjective"
        cluster_means = torch.stack([_select_neurons(per_neuron, c, 1, owner).mean(dim=1) for c in clusters], dim=1)
        return self.contrastive_objective(cluster_means[:, 0], cluster_means, self._temperature)


class InnerNeuronVisualizationObjective(PerStimulusObjective):
    """Activation of one channel of an internal layer at one spatial position (default: the centre).

    Layers are named by their module path joined with ``_`` (e.g. ``core_features_layer0_conv``); see
    :meth:`layer_names`. Choose one with :meth:`set_layer_channel`; a list of channels optimises many units at
    once (stimulus ``b`` drives ``channels[b]``). A forward hook is attached to that layer only while the
    objective runs, so no hooks or activations outlive a call.
    Input: (batch, channels, time, height, width). The layer output must be (batch, channels, time, height, width);
    ``per_stimulus`` output: (batch,).
    """

    def __init__(
        self,
        model: nn.Module,
        data_key: str | None = None,
        response_reducer: ResponseReducer | None = None,
        *,
        reducer: ResponseReducer | None = None,
    ) -> None:
        super().__init__(model, data_key)
        self._modules = {name.replace(".", "_"): module for name, module in model.named_modules() if name}
        self._response_reducer = _pick_reducer("InnerNeuronVisualizationObjective", response_reducer, reducer)
        self.layer_name = ""
        self.channel_id = -1
        self.stimulus_channels: list[int] | None = None  # one channel per stimulus, when a list was chosen
        self.position: tuple[int, int] | None = None

    def layer_names(self) -> list[str]:
        """Names of every submodule that can be chosen as a layer."""
        return list(self._modules)

    def set_layer_channel(
        self, layer: str, channel: int | Sequence[int], position: tuple[int, int] | None = None
    ) -> None:
        """Maximise ``channel`` of ``layer`` at ``position`` = (row, column) of its output (None: the centre).

        With a sequence of channels, stimulus ``b`` of a batch maximises ``channel[b]`` (the batch size must match).
        """
        if layer not in self._modules:
            raise ValueError(
                f"InnerNeuronVisualizationObjective: unknown layer {layer!r}; expected one of {self.layer_names()}."
            )
        self.layer_name = layer
        channels = _as_index_list(channel)
        self.stimulus_channels = None if isinstance(channel, int) else channels
        self.channel_id = channels[0]
        self.position = position

    @contextmanager
    def _capture(self, layer: str) -> Iterator[list[torch.Tensor]]:
        outputs: list[torch.Tensor] = []
        handle = self._modules[layer].register_forward_hook(lambda _m, _i, out: outputs.append(out))
        try:
            yield outputs
        finally:
            handle.remove()

    def get_output_shape_for_layer(self, layer_name: str, stimulus_shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """Output shape of ``layer_name`` for a stimulus of ``stimulus_shape`` (None for an unknown layer)."""
        if layer_name not in self._modules or self._model is None:
            return None
        device = next(self._model.parameters()).device
        with torch.no_grad(), self._capture(layer_name) as outputs:
            self.model_forward(torch.zeros(stimulus_shape, device=device))
        if not outputs or not isinstance(outputs[-1], torch.Tensor):
            return None
        return tuple(outputs[-1].shape)

    def per_stimulus(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Reduced activation per stimulus, ``(batch,)``."""
        if not self.layer_name or self.channel_id < 0:
            raise ValueError(
                "InnerNeuronVisualizationObjective: call set_layer_channel(layer, channel) before optimising."
            )
        with self._capture(self.layer_name) as outputs:
            self.model_forward(stimulus)
        activation = outputs[-1] if outputs else None
        if not isinstance(activation, torch.Tensor) or activation.dim() != 5:
            shape = None if not isinstance(activation, torch.Tensor) else tuple(activation.shape)
            raise DataShapeError(
                f"InnerNeuronVisualizationObjective: layer {self.layer_name!r} produced {shape}; expected a tensor "
                "(batch, channels, time, height, width). Choose a convolutional layer."
            )
        height, width = activation.shape[-2:]
        row, column = self.position if self.position is not None else (height // 2, width // 2)
        if self.stimulus_channels is None:
            trace = activation[:, self.channel_id, :, row, column]  # (batch, time)
        else:
            if len(self.stimulus_channels) != stimulus.shape[0]:
                raise DataShapeError(
                    f"InnerNeuronVisualizationObjective: {stimulus.shape[0]} stimuli for {len(self.stimulus_channels)} "
                    "channels; give one stimulus per channel."
                )
            rows = torch.arange(stimulus.shape[0], device=activation.device)
            channels = torch.tensor(self.stimulus_channels, device=activation.device)
            trace = activation[rows, channels, :, row, column]
        return _check_scores(
            self._response_reducer.forward_batch(trace), stimulus.shape[0], "InnerNeuronVisualizationObjective", ""
        )


class JitteredObjective(PerStimulusObjective):
    """Jitter robustness: evaluate ``objective`` on the stimulus randomly shifted in space (circularly).

    Each call draws, per stimulus, a shift in ``[-max_shift, max_shift]`` for rows and columns from the global
    torch random generator (seed it, e.g. with ``optimize_stimulus(..., seed=...)``). Stimuli that must drive
    the neuron at slightly different positions come out smoother and less tied to single pixels. Because the
    shifts are random, a batch and the corresponding single runs draw different shifts.
    Input: (batch, channels, time, height, width). ``per_stimulus`` output: (batch,).
    """

    def __init__(self, objective: PerStimulusObjective, max_shift: int | tuple[int, int] = 1) -> None:
        super().__init__(objective.model, None)
        self._objective = objective
        self._max_shift = (max_shift, max_shift) if isinstance(max_shift, int) else tuple(max_shift)
        if min(self._max_shift) < 0:
            raise ValueError(f"JitteredObjective: max_shift must be non-negative, got {max_shift}.")

    def per_stimulus(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Scores of the shifted stimuli, ``(batch,)``."""
        shifted = [torch.roll(single, shifts=self.draw_shift(), dims=(-2, -1)) for single in stimulus.split(1, dim=0)]
        return self._objective.per_stimulus(torch.cat(shifted, dim=0))

    def draw_shift(self) -> tuple[int, int]:
        """One random (row, column) shift."""
        row, column = (int(torch.randint(-m, m + 1, ()).item()) for m in self._max_shift)
        return row, column
