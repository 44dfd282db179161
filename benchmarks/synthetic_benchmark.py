"""Time the synthetic retina and print its acceptance numbers (STA recovery, spectral exponent, noise ceiling).

Run: ``.venv/bin/python benchmarks/synthetic_benchmark.py [--seeds 0 1 2] [--threads 2]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from openretina.data_io.synthetic import (
    SyntheticRetinaConfig,
    make_synthetic_retina,
    rank_one_receptive_field,
    spatial_power_spectrum,
    spike_triggered_average,
)
from openretina.eval.metrics import correlation_numpy
from openretina.eval.oracles import oracle_correlation


def spectral_exponent(movie: np.ndarray) -> float:
    """Slope ``a`` of a log-log fit of the spatial power spectrum between 0.05 and 0.45 cycles/pixel."""
    frequencies, power = spatial_power_spectrum(movie)
    fitted = (frequencies >= 0.05) & (frequencies <= 0.45)
    return float(-np.polyfit(np.log(frequencies[fitted]), np.log(power[fitted]), 1)[0])


def sta_correlations(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of rank-1 STAs (20 min of white noise) with the true RFs, and the cells' noise rates (Hz)."""
    config = SyntheticRetinaConfig(num_natural_clips=20, num_white_noise_clips=240, num_sessions=1)
    data = make_synthetic_retina(config, seed=seed)
    noise = data.train_segments["white_noise"]
    spikes = data.responses["session_0"].train[:, noise]
    spatial, _ = rank_one_receptive_field(
        spike_triggered_average(data.movies["session_0"].train[:, noise], spikes, num_lags=8)
    )
    truth = data.ground_truth["session_0"].spatial_rfs
    correlation = correlation_numpy(spatial.reshape(len(spatial), -1), truth.reshape(len(truth), -1))
    return correlation, spikes.mean(axis=1) * config.frame_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for seed in args.seeds:
        start = time.perf_counter()
        data = make_synthetic_retina(seed=seed)
        elapsed = time.perf_counter() - start
        natural = data.movies["session_0"].train[:, data.train_segments["natural"]]
        oracles = [oracle_correlation(r.test_by_trial_dict["test"]).mean() for r in data.responses.values()]
        correlation, rate_hz = sta_correlations(seed)
        active = rate_hz >= 4.0
        print(
            f"seed {seed}: default dataset in {elapsed:.2f} s | spectral exponent {spectral_exponent(natural):.2f} | "
            f"oracle per session {', '.join(f'{o:.3f}' for o in oracles)} | STA r (cells >= 4 Hz: "
            f"{active.sum()}/{active.size}) min {correlation[active].min():.3f} median {np.median(correlation):.3f}"
        )


if __name__ == "__main__":
    main()
