"""Regularisation losses (added to the loss) and postprocessors (applied to the stimulus after each step).

Every tensor here is a stimulus batch ``(batch, channels, time, height, width)``. Losses act on each stimulus
separately: :meth:`StimulusRegularizationLoss.per_stimulus` returns ``(batch,)`` and ``forward`` / ``__call__``
their sum, so batching stimuli does not couple them. Postprocessors act on each stimulus separately too.

Differences from the reference:

* :class:`RangeRegularizationLoss` penalises the norm of each stimulus, not of the whole batch.
* :class:`ChangeNormJointlyClipRangeSeparately` is by default the exact Euclidean projection of each stimulus onto
  the set "norm <= ``norm`` and every channel inside its range" (stimuli already inside are untouched);
  ``exact_norm=True`` restores the reference's "rescale to exactly ``norm``, then clip". Zero stimuli no longer
  produce NaN, non-contiguous input works, and one ``(min, max)`` pair is used for every channel.
* :class:`TemporalGaussianLowPassFilterProcessor` pads by repeating the edge frames (zero padding pulled the first and
  last frames towards 0) and requires an odd kernel (an even one is off-centre by half a frame).
* New: :class:`TotalVariationRegularizer`, :class:`ClipStimulus`, :class:`SpatialGaussianLowPassFilterProcessor`,
  :class:`TemporalFourierLowPassProcessor`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from openretina.errors import DataShapeError

__all__ = [
    "ChangeNormJointlyClipRangeSeparately",
    "ClipStimulus",
    "RangeRegularizationLoss",
    "SpatialGaussianLowPassFilterProcessor",
    "StimulusPostprocessor",
    "StimulusRegularizationLoss",
    "TemporalFourierLowPassProcessor",
    "TemporalGaussianLowPassFilterProcessor",
    "TotalVariationRegularizer",
]

Bounds = tuple[float | None, float | None]


def _check_stimulus(x: torch.Tensor, owner: str) -> None:
    if x.dim() != 5:
        raise DataShapeError(
            f"{owner}: expected a stimulus batch (batch, channels, time, height, width), got shape {tuple(x.shape)}. "
            "Add a batch axis with x[None] for a single stimulus."
        )


def _channel_bounds(min_max_values: Sequence[Bounds], num_channels: int, owner: str) -> Sequence[Bounds]:
    """One ``(min, max)`` per channel; a single pair applies to every channel."""
    if len(min_max_values) == 1:
        return list(min_max_values) * num_channels
    if len(min_max_values) != num_channels:
        raise DataShapeError(
            f"{owner}: {len(min_max_values)} (min, max) ranges given for a stimulus with {num_channels} channels; "
            "give one range per channel or a single range for all."
        )
    return min_max_values


def _bound_tensors(x: torch.Tensor, bounds: Sequence[Bounds]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds broadcastable to ``x`` (open bounds are -inf/+inf)."""
    low = [-torch.inf if lo is None else lo for lo, _ in bounds]
    high = [torch.inf if hi is None else hi for _, hi in bounds]
    shape = (1, len(bounds), 1, 1, 1)
    as_tensor = lambda values: torch.tensor(values, dtype=x.dtype, device=x.device).reshape(shape)  # noqa: E731
    return as_tensor(low), as_tensor(high)


def gaussian_kernel_1d(sigma: float, kernel_size: int) -> torch.Tensor:
    """Normalised Gaussian ``exp(-x²/2σ²)`` sampled at ``x = -(k//2) ... k//2`` (``kernel_size`` must be odd)."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"Gaussian kernel_size must be a positive odd number (centred kernel), got {kernel_size}.")
    if sigma <= 0:
        raise ValueError(f"Gaussian sigma must be positive, got {sigma}.")
    positions = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
    kernel = torch.exp(-(positions**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).float()


# ------------------------------------------------------------------------------------------------------- losses
class StimulusRegularizationLoss:
    """Base regulariser: zero penalty. Subclasses implement :meth:`per_stimulus`."""

    def per_stimulus(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Penalty of each stimulus, ``(batch,)``. Input: (batch, channels, time, height, width)."""
        return stimulus.new_zeros(stimulus.shape[0])

    def forward(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Sum of the per-stimulus penalties (0-d)."""
        return self.per_stimulus(stimulus).sum()

    def __call__(self, stimulus: torch.Tensor) -> torch.Tensor:
        return self.forward(stimulus)


class RangeRegularizationLoss(StimulusRegularizationLoss):
    """``factor · (Σ relu(min_c − x) + Σ relu(x − max_c) + relu(‖x‖ − max_norm))`` for each stimulus ``x``.

    ``min_max_values``: one ``(min, max)`` per channel (None = open); ``max_norm``: None disables the norm term.
    """

    def __init__(self, min_max_values: Iterable[Bounds], max_norm: float | None, factor: float = 1.0) -> None:
        self._min_max_values = list(min_max_values)
        self._max_norm = max_norm
        self._factor = factor

    def per_stimulus(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Range and norm penalty per stimulus, ``(batch,)``."""
        _check_stimulus(stimulus, "RangeRegularizationLoss")
        bounds = _channel_bounds(self._min_max_values, stimulus.shape[1], "RangeRegularizationLoss")
        low, high = _bound_tensors(stimulus, bounds)
        # relu(-inf - x) = 0, so open bounds contribute nothing.
        outside = F.relu(low - stimulus) + F.relu(stimulus - high)
        penalty = outside.flatten(start_dim=1).sum(dim=1)
        if self._max_norm is not None:
            penalty = penalty + F.relu(stimulus.flatten(start_dim=1).norm(dim=1) - self._max_norm)
        return self._factor * penalty


class TotalVariationRegularizer(StimulusRegularizationLoss):
    """``weight · Σ_axis mean |x[i+1] − x[i]|`` along ``axes`` for each stimulus: favours smooth stimuli.

    ``axes`` are axes of the stimulus batch (default: time, height and width). Using the mean rather than the sum
    of the differences keeps ``weight`` independent of the stimulus size.
    """

    def __init__(self, weight: float = 0.01, axes: Sequence[int] = (2, 3, 4)) -> None:
        if any(axis not in (1, 2, 3, 4) for axis in axes):
            raise ValueError(f"TotalVariationRegularizer: axes must be among 1-4 of (B, C, T, H, W), got {axes}.")
        self.weight = weight
        self.axes = tuple(axes)

    def per_stimulus(self, stimulus: torch.Tensor) -> torch.Tensor:
        """Total variation per stimulus, ``(batch,)``."""
        _check_stimulus(stimulus, "TotalVariationRegularizer")
        total = stimulus.new_zeros(stimulus.shape[0])
        for axis in self.axes:
            if stimulus.shape[axis] > 1:
                total = total + stimulus.diff(dim=axis).abs().flatten(start_dim=1).mean(dim=1)
        return self.weight * total


# ------------------------------------------------------------------------------------------------ postprocessors
class StimulusPostprocessor:
    """Base postprocessor: identity. ``process`` maps (batch, channels, time, height, width) to the same shape."""

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Return the processed stimulus batch."""
        return x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.process(x)


class ClipStimulus(StimulusPostprocessor):
    """Clamp every value to ``[min_value, max_value]`` (None = open)."""

    def __init__(self, min_value: float | None = None, max_value: float | None = None) -> None:
        if min_value is not None and max_value is not None and min_value > max_value:
            raise ValueError(f"ClipStimulus: min_value {min_value} is larger than max_value {max_value}.")
        self.min_value = min_value
        self.max_value = max_value

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Clamped copy of ``x``."""
        return x.clamp(self.min_value, self.max_value)

    def __repr__(self) -> str:
        return f"ClipStimulus({self.min_value}, {self.max_value})"


class ChangeNormJointlyClipRangeSeparately(StimulusPostprocessor):
    """Keep each stimulus inside a norm ball (all channels jointly) and each channel inside its range.

    Default: the exact Euclidean projection onto {norm <= ``norm``} ∩ {per-channel box}, computed as
    ``clip(x / (1 + λ))`` with the smallest ``λ >= 0`` that satisfies the norm (an exact active-set iteration;
    for any box that contains 0). ``exact_norm=True``: the reference behaviour, rescale every stimulus to norm exactly
    ``norm`` (up or down), then clip. ``norm=None``: clipping only.
    """

    PROJECTION_MAX_STEPS = 50

    def __init__(self, min_max_values: Iterable[Bounds], norm: float | None, exact_norm: bool = False) -> None:
        self._min_max_values = list(min_max_values)
        if norm is not None and norm <= 0:
            raise ValueError(f"ChangeNormJointlyClipRangeSeparately: norm must be positive or None, got {norm}.")
        self._norm = norm
        self._exact_norm = exact_norm

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Projected (or rescaled and clipped) copy of ``x``."""
        _check_stimulus(x, "ChangeNormJointlyClipRangeSeparately")
        bounds = _channel_bounds(self._min_max_values, x.shape[1], "ChangeNormJointlyClipRangeSeparately")
        low, high = _bound_tensors(x, bounds)
        if self._norm is None:
            return torch.clamp(x, low, high)
        if self._exact_norm:
            norms = x.flatten(start_dim=1).norm(dim=1).reshape(-1, 1, 1, 1, 1)
            scale = torch.where(norms > 0, self._norm / norms.clamp_min(torch.finfo(x.dtype).tiny), 1.0)
            return torch.clamp(x * scale, low, high)
        return _project_onto_ball_and_box(x, low, high, self._norm, self.PROJECTION_MAX_STEPS)

    def __repr__(self) -> str:
        return (
            f"ChangeNormJointlyClipRangeSeparately(norm={self._norm}, ranges={self._min_max_values}, "
            f"exact_norm={self._exact_norm})"
        )


_NORM_MARGIN = 16  # in units of the dtype's machine epsilon


def _project_onto_ball_and_box(
    x: torch.Tensor, low: torch.Tensor, high: torch.Tensor, radius: float, max_steps: int
) -> torch.Tensor:
    """Euclidean projection of each stimulus of ``x`` onto {‖y‖ <= radius} ∩ [low, high] (box containing 0).

    The projection is ``clip(s·x)`` with the largest ``s`` in (0, 1] whose clipped norm is at most ``radius``.
    ``‖clip(s·x)‖²`` is ``s²·Q + C`` on every interval where the set of clipped entries is fixed (Q: sum of the
    unclipped x², C: sum of the clipped bounds²). Solving ``s²·Q + C = radius²`` with the clipped set of the current
    ``s`` gives a feasible ``s`` that never decreases (entries that clip at the larger ``s`` only lower the norm),
    so the iteration climbs to the exact answer once the clipped set stops changing, usually in 2-5 steps.
    """
    flat = x.flatten(start_dim=1)
    bound = torch.where(x >= 0, high, low).expand_as(x).flatten(start_dim=1)  # the bound each entry clips to
    radius_sq = radius**2

    def clipped_parts(scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clipped = (scale[:, None] * flat).abs() >= bound.abs()
        free_sq = torch.where(clipped, 0.0, flat.square()).sum(dim=1)
        bound_sq = torch.where(clipped, bound.square(), 0.0).sum(dim=1)
        return free_sq, bound_sq

    def solved_scale(free_sq: torch.Tensor, bound_sq: torch.Tensor) -> torch.Tensor:
        # s with s²·Q + C = radius² for one clipped set; 0 when its clipped bounds alone exceed the radius.
        return torch.sqrt((radius_sq - bound_sq).clamp_min(0.0) / free_sq.clamp_min(torch.finfo(x.dtype).tiny))

    ones = x.new_ones(x.shape[0])
    free_sq, bound_sq = clipped_parts(ones)
    inside = free_sq + bound_sq <= radius_sq
    if bool(inside.all()):
        return torch.clamp(x, low, high)
    scale = torch.where(inside, ones, solved_scale(free_sq, bound_sq).clamp_max(1.0))
    settled = inside
    for _ in range(max_steps):
        # Each stimulus stops at its own fixed point, so its result does not depend on the rest of the batch.
        climbed = torch.maximum(solved_scale(*clipped_parts(scale)), scale).clamp_max(1.0)
        settled = settled | (climbed == scale)
        if bool(settled.all()):
            break
        scale = torch.where(settled, scale, climbed)
    # Land a hair inside the ball: a norm rounded to just above the radius would switch on norm penalties (such
    # as RangeRegularizationLoss's) for some stimuli and not others, depending on summation order.
    scale = torch.where(inside, ones, scale * (1 - _NORM_MARGIN * torch.finfo(x.dtype).eps))
    return torch.clamp(x * scale.reshape(-1, 1, 1, 1, 1), low, high)


class TemporalGaussianLowPassFilterProcessor(StimulusPostprocessor):
    """Gaussian smoothing of every channel and pixel along time, with edge frames repeated as padding.

    ``device`` is accepted for compatibility and ignored: the kernel follows the stimulus' device.
    """

    def __init__(self, sigma: float, kernel_size: int, device: str | None = None) -> None:
        del device  # the kernel is moved to the input's device on every call
        self.kernel = gaussian_kernel_1d(sigma, kernel_size)

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Temporally smoothed copy of ``x`` (same shape)."""
        _check_stimulus(x, type(self).__name__)
        return _smooth_along(x, self.kernel, axis=2)


class SpatialGaussianLowPassFilterProcessor(StimulusPostprocessor):
    """Gaussian blur of every channel and frame over height and width (separable), edges repeated as padding."""

    def __init__(self, sigma: float, kernel_size: int) -> None:
        self.kernel = gaussian_kernel_1d(sigma, kernel_size)

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Spatially blurred copy of ``x`` (same shape)."""
        _check_stimulus(x, type(self).__name__)
        return _smooth_along(_smooth_along(x, self.kernel, axis=3), self.kernel, axis=4)


def _smooth_along(x: torch.Tensor, kernel: torch.Tensor, axis: int) -> torch.Tensor:
    """Convolve every 1-D line of ``x`` along ``axis`` with the odd ``kernel``, replicating the edge values."""
    moved = x.movedim(axis, -1)
    lines = moved.reshape(-1, 1, moved.shape[-1])
    half = kernel.numel() // 2
    padded = F.pad(lines, (half, half), mode="replicate")
    smoothed = F.conv1d(padded, kernel.to(dtype=x.dtype, device=x.device).reshape(1, 1, -1))
    return smoothed.reshape(moved.shape).movedim(-1, axis)


class TemporalFourierLowPassProcessor(StimulusPostprocessor):
    """Remove temporal frequencies above ``cutoff_hz`` (each channel and pixel; FFT along time).

    ``frame_rate_hz`` is the model's frame rate (e.g. ``model.data_info`` or the dataset's), never assumed.
    """

    def __init__(self, cutoff_hz: float, frame_rate_hz: float) -> None:
        if cutoff_hz <= 0 or frame_rate_hz <= 0:
            raise ValueError(
                f"TemporalFourierLowPassProcessor: cutoff_hz and frame_rate_hz must be positive, got "
                f"{cutoff_hz} and {frame_rate_hz}."
            )
        self.cutoff_hz = cutoff_hz
        self.frame_rate_hz = frame_rate_hz

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Low-passed copy of ``x`` (same shape)."""
        _check_stimulus(x, type(self).__name__)
        frames = x.shape[2]
        spectrum = torch.fft.rfft(x, dim=2)
        frequencies = torch.fft.rfftfreq(frames, d=1.0 / self.frame_rate_hz).to(x.device)
        keep = (frequencies <= self.cutoff_hz).to(spectrum.dtype).reshape(1, 1, -1, 1, 1)
        return torch.fft.irfft(spectrum * keep, n=frames, dim=2)
