"""Regularisation losses and postprocessors against hand-computed or independently computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from openretina.errors import DataShapeError
from openretina.insilico.stimulus_optimization import (
    ChangeNormJointlyClipRangeSeparately,
    ClipStimulus,
    RangeRegularizationLoss,
    SpatialGaussianLowPassFilterProcessor,
    StimulusPostprocessor,
    StimulusRegularizationLoss,
    TemporalFourierLowPassProcessor,
    TemporalGaussianLowPassFilterProcessor,
    TotalVariationRegularizer,
)


def two_stimuli() -> torch.Tensor:
    """(2, 2, 1, 1, 2): stimulus 0 = channels [3, -1] and [0.5, -4]; stimulus 1 = all zeros."""
    x = torch.zeros(2, 2, 1, 1, 2)
    x[0, 0, 0, 0] = torch.tensor([3.0, -1.0])
    x[0, 1, 0, 0] = torch.tensor([0.5, -4.0])
    return x


def test_base_classes_are_neutral() -> None:
    x = two_stimuli()
    assert torch.equal(StimulusRegularizationLoss().per_stimulus(x), torch.zeros(2))
    assert StimulusRegularizationLoss()(x).item() == 0.0
    assert StimulusPostprocessor()(x) is x


def test_range_regularization_loss_per_stimulus() -> None:
    x = two_stimuli()
    loss = RangeRegularizationLoss([(-0.5, 2.0), (None, 0.0)], max_norm=4.0, factor=0.5)
    # Stimulus 0: channel 0: 3 > 2 by 1, -1 < -0.5 by 0.5; channel 1: 0.5 > 0 by 0.5; norm sqrt(9+1+0.25+16)=5.123.
    norm = (9 + 1 + 0.25 + 16) ** 0.5
    expected = 0.5 * (1.0 + 0.5 + 0.5 + (norm - 4.0))
    torch.testing.assert_close(loss.per_stimulus(x), torch.tensor([expected, 0.0]))
    assert loss(x).item() == pytest.approx(expected)
    # One (min, max) pair for every channel, no norm term.
    assert RangeRegularizationLoss([(0.0, 1.0)], max_norm=None).per_stimulus(x)[0].item() == pytest.approx(7.0)


def test_total_variation() -> None:
    x = torch.zeros(1, 1, 2, 2, 3)
    x[0, 0, 0, 0] = torch.tensor([0.0, 1.0, 3.0])  # width diffs 1, 2; rest of frame 0 and frame 1 are zero
    tv = TotalVariationRegularizer(weight=0.1)
    # time: |diffs| 0, 1, 3 and three zeros over 6 pairs -> 4/6; height: 4/6 likewise; width: 3/8.
    assert tv(x).item() == pytest.approx(0.1 * (4 / 6 + 4 / 6 + 3 / 8))
    assert TotalVariationRegularizer(weight=1.0, axes=(4,))(x).item() == pytest.approx(3 / 8)


def test_clip_stimulus() -> None:
    x = two_stimuli()
    clipped = ClipStimulus(0.0, 1.0)(x)
    assert torch.equal(clipped[0, 0, 0, 0], torch.tensor([1.0, 0.0]))
    assert torch.equal(ClipStimulus(None, 0.0)(x)[0, 1, 0, 0], torch.tensor([0.0, -4.0]))


def _dykstra_projection(x: np.ndarray, low: np.ndarray, high: np.ndarray, radius: float) -> np.ndarray:
    """Projection onto box ∩ ball by Dykstra's alternating projections (independent of the implementation)."""
    y, p, q = x.copy(), np.zeros_like(x), np.zeros_like(x)
    for _ in range(5000):
        z = np.clip(y + p, low, high)
        p = y + p - z
        w = z + q
        y = w * min(1.0, radius / np.linalg.norm(w))
        q = z + q - y
    return y


@pytest.mark.parametrize(
    ("seed", "ranges", "radius"),
    [
        (0, [(-1.0, 4.0), (-2.0, 1.5)], 3.0),
        (1, [(-1.0, 4.0), (-2.0, 1.5)], 3.0),
        (2, [(-0.3, 0.2), (0.0, 0.5)], 1.0),  # tight box: the clipped bounds alone exceed the radius at scale 1
        (3, [(-5.0, 5.0), (-5.0, 5.0)], 2.0),  # loose box: the plain ball projection
    ],
)
def test_norm_projection_is_the_exact_projection_onto_ball_and_box(
    seed: int, ranges: list[tuple[float, float]], radius: float
) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 2, 2, 3, 2, generator=generator) * 3
    x[2] *= 0.02  # already inside: must be returned unchanged (after clipping)
    projected = ChangeNormJointlyClipRangeSeparately(ranges, norm=radius).process(x)
    low = np.array([r[0] for r in ranges]).reshape(2, 1, 1, 1)
    high = np.array([r[1] for r in ranges]).reshape(2, 1, 1, 1)
    for b in range(4):
        expected = _dykstra_projection(x[b].double().numpy(), low, high, radius)
        np.testing.assert_allclose(projected[b].numpy(), expected, atol=1e-5)
    assert torch.equal(projected[2], torch.clamp(x[2], torch.tensor(low).float(), torch.tensor(high).float()))
    assert (projected.flatten(1).norm(dim=1) <= radius * (1 + 1e-6)).all()


def test_exact_norm_mode_rescales_then_clips_like_the_reference() -> None:
    x = torch.zeros(2, 2, 1, 1, 2)
    x[0] = torch.tensor([3.0, 4.0, 0.0, 0.0]).reshape(2, 1, 1, 2)  # norm 5
    processed = ChangeNormJointlyClipRangeSeparately([(None, None), (None, None)], norm=10.0, exact_norm=True)(x)
    assert torch.equal(processed[0].flatten(), torch.tensor([6.0, 8.0, 0.0, 0.0]))  # scaled up to norm 10
    assert torch.equal(processed[1], x[1])  # a zero stimulus stays zero instead of NaN
    clipped = ChangeNormJointlyClipRangeSeparately([(None, 7.0)], norm=10.0, exact_norm=True)(x)
    assert torch.equal(clipped[0].flatten(), torch.tensor([6.0, 7.0, 0.0, 0.0]))


def test_norm_postprocessor_handles_ranges_and_layouts() -> None:
    x = torch.randn(1, 3, 4, 2, 2).transpose(3, 4)  # non-contiguous, 3 channels
    assert torch.equal(ChangeNormJointlyClipRangeSeparately([(None, None)], norm=None)(x), x)
    with pytest.raises(DataShapeError, match=r"2 \(min, max\) ranges given for a stimulus with 3 channels"):
        ChangeNormJointlyClipRangeSeparately([(0, 1), (0, 1)], norm=1.0)(x)


def test_temporal_gaussian_filter_with_edge_padding() -> None:
    x = torch.zeros(1, 1, 5, 1, 1)
    x[0, 0, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0, 4.0])
    smoothed = TemporalGaussianLowPassFilterProcessor(sigma=1.0, kernel_size=3, device="cpu")(x)
    w_side = np.exp(-0.5) / (1 + 2 * np.exp(-0.5))
    w_mid = 1 / (1 + 2 * np.exp(-0.5))
    # Edge frames are repeated: frame 0 sees (1, 1, 0), frame 4 sees (0, 4, 4).
    expected = [w_mid + w_side, w_side, 0.0, 4 * w_side, 4 * (w_mid + w_side)]
    np.testing.assert_allclose(smoothed.flatten().numpy(), expected, rtol=1e-6, atol=1e-7)
    constant = torch.full((2, 2, 6, 3, 3), 2.5)
    torch.testing.assert_close(TemporalGaussianLowPassFilterProcessor(0.5, 5)(constant), constant)
    with pytest.raises(ValueError, match="odd"):
        TemporalGaussianLowPassFilterProcessor(sigma=1.0, kernel_size=4)


def test_spatial_gaussian_filter_matches_scipy() -> None:
    x = torch.randn(2, 2, 3, 7, 6, generator=torch.Generator().manual_seed(1))
    blurred = SpatialGaussianLowPassFilterProcessor(sigma=1.2, kernel_size=5)(x).numpy()
    expected = x.double().numpy()
    for axis in (3, 4):
        expected = gaussian_filter1d(expected, sigma=1.2, axis=axis, mode="nearest", radius=2)
    np.testing.assert_allclose(blurred, expected, atol=1e-5)


def test_temporal_fourier_low_pass_keeps_slow_and_removes_fast_components() -> None:
    frame_rate, frames = 30.0, 60  # 2 s: both frequencies complete whole cycles
    t = torch.arange(frames) / frame_rate
    slow, fast = torch.sin(2 * torch.pi * 2.0 * t), torch.cos(2 * torch.pi * 10.0 * t)
    x = (slow + fast).reshape(1, 1, frames, 1, 1).repeat(2, 2, 1, 2, 3)
    filtered = TemporalFourierLowPassProcessor(cutoff_hz=5.0, frame_rate_hz=frame_rate)(x)
    torch.testing.assert_close(filtered, slow.reshape(1, 1, frames, 1, 1).expand_as(x), atol=1e-5, rtol=0)


def test_regularizers_reject_wrong_layouts() -> None:
    with pytest.raises(DataShapeError, match=r"\(batch, channels, time, height, width\)"):
        TotalVariationRegularizer()(torch.zeros(2, 3, 4, 5))
