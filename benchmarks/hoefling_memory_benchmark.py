"""Peak memory of the Höfling natural-movie loaders on a dataset the size of Höfling et al. 2024 high-res.

Synthetic data with the published structure: one training movie of 2 x 16,200 x 72 x 64 float32 (108 clips of
150 frames, ~0.6 GB), a 750-frame test movie, 20 presentation orders, ``--sessions`` recording fields (default 50,
alternating eyes and orders) of ``--neurons`` cells each. The script measures the anonymous resident memory
(``RssAnon``) while :func:`openretina.data_io.hoefling_2024.dataloaders.natmov_dataloaders_v2` builds all loaders
and then yields ``--batches`` batches per loader and split (0 = one full pass over every loader, ~6 min).

The reference approach is not run (it would need > 20 GB); its memory is computed from the copies it makes:
one full training movie per presentation order and eye (20 x 2 = 40 movies), on top of the loaded movie. That is a
lower bound: it leaves out its per-session split copies and the float64/tensor conversions.

Run: ``.venv/bin/python benchmarks/hoefling_memory_benchmark.py [--sessions 50] [--batches 1]``
(writes ``benchmarks/results/hoefling_memory.{json,md}``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openretina.data_io._memory import PeakRssAnon, rss_anon_bytes
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.hoefling_2024.constants import CLIP_LENGTH, NUM_CLIPS, VALIDATION_CLIP_INDICES
from openretina.data_io.hoefling_2024.dataloaders import natmov_dataloaders_v2

RESULTS = Path(__file__).parent / "results"
CHANNELS, HEIGHT, WIDTH = 2, 72, 64
TEST_FRAMES = 750
N_ORDERS = 20
N_EYES = 2
GB = 1e9


def make_dataset(
    n_sessions: int, n_neurons: int, rng: np.random.Generator
) -> tuple[MoviesTrainTestSplit, dict[str, ResponsesTrainTestSplit]]:
    """One shared movie and ``n_sessions`` fields' responses with the Höfling high-res layout."""
    train = rng.standard_normal((CHANNELS, NUM_CLIPS * CLIP_LENGTH, HEIGHT, WIDTH), dtype=np.float32)
    test = rng.standard_normal((CHANNELS, TEST_FRAMES, HEIGHT, WIDTH), dtype=np.float32)
    sequences = np.stack([rng.permutation(NUM_CLIPS) for _ in range(N_ORDERS)], axis=1).astype(np.int64)
    movie = MoviesTrainTestSplit(train=train, test=test, random_sequences=sequences, stim_id="natural")
    responses = {}
    for index in range(n_sessions):
        by_trial = rng.random((3, n_neurons, TEST_FRAMES), dtype=np.float32)
        responses[f"field_{index}"] = ResponsesTrainTestSplit(
            train=rng.random((n_neurons, NUM_CLIPS * CLIP_LENGTH), dtype=np.float32),
            test=by_trial.mean(axis=0),
            test_by_trial=by_trial,
            stim_id="natural",
            session_kwargs={"eye": "left" if index % 2 else "right", "scan_sequence_idx": index % N_ORDERS},
        )
    return movie, responses


def iterate(loaders: dict[str, dict[str, Any]], max_batches: int) -> int:
    """Draw up to ``max_batches`` batches (0 = all) from every loader; returns the number drawn."""
    drawn = 0
    for split_loaders in loaders.values():
        for loader in split_loaders.values():
            for index, _batch in enumerate(loader):
                drawn += 1
                if max_batches and index + 1 >= max_batches:
                    break
    return drawn


def run(n_sessions: int, n_neurons: int, max_batches: int, batch_size: int, seed: int) -> dict[str, Any]:
    """Build the dataset, then measure peak ``RssAnon`` over loader construction and iteration."""
    before = rss_anon_bytes()
    movie, responses = make_dataset(n_sessions, n_neurons, np.random.default_rng(seed))
    data_bytes = rss_anon_bytes() - before
    movie_bytes = int(movie.train.nbytes)
    start = time.perf_counter()
    with PeakRssAnon() as peak:
        loaders = natmov_dataloaders_v2(responses, movie, list(VALIDATION_CLIP_INDICES), 50, batch_size, seed=seed)
        built_s = time.perf_counter() - start
        n_batches = iterate(loaders, max_batches)
    elapsed = time.perf_counter() - start
    # Reference: 20 orders x 2 eyes full training movies, plus the loaded movie itself.
    reference_bytes = (N_ORDERS * N_EYES + 1) * movie_bytes
    ours_bytes = data_bytes + peak.growth
    return {
        "sessions": n_sessions,
        "neurons_per_session": n_neurons,
        "movie_shape": list(movie.train.shape),
        "orders": N_ORDERS,
        "batch_size": batch_size,
        "batches_per_loader": max_batches or "all",
        "batches_drawn": n_batches,
        "build_s": round(built_s, 2),
        "total_s": round(elapsed, 2),
        "movie_gb": movie_bytes / GB,
        "dataset_in_ram_gb": data_bytes / GB,
        "loader_peak_growth_gb": peak.growth / GB,
        "ours_total_gb": ours_bytes / GB,
        "process_peak_rss_anon_gb": peak.peak / GB,
        "max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB,
        "reference_lower_bound_gb": reference_bytes / GB,
        "ratio_ours_to_reference": ours_bytes / reference_bytes,
        "target_ratio": 0.25,
    }


def markdown(result: dict[str, Any], command: str) -> str:
    """The Markdown report of one run."""
    r = result
    verdict = "meets" if r["ratio_ours_to_reference"] <= r["target_ratio"] else "misses"
    return f"""# Höfling high-res memory benchmark

Machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {platform.platform()}.
Command: `{command}`.

Data: one training movie {" x ".join(map(str, r["movie_shape"]))} float32 ({r["movie_gb"]:.3f} GB), a
{TEST_FRAMES}-frame test movie, {r["orders"]} presentation orders, {r["sessions"]} recording fields of
{r["neurons_per_session"]} neurons (alternating eyes). Loaders: `natmov_dataloaders_v2`, batch size
{r["batch_size"]}, {r["batches_per_loader"]} batches per loader and split ({r["batches_drawn"]} batches drawn).

| quantity | GB |
|---|---:|
| dataset in RAM (movies + responses) | {r["dataset_in_ram_gb"]:.3f} |
| peak growth while building loaders and drawing batches | {r["loader_peak_growth_gb"]:.3f} |
| **ours: dataset + loader peak** | **{r["ours_total_gb"]:.3f}** |
| reference approach, lower bound (loaded movie + 20 orders x 2 eyes copies) | {r["reference_lower_bound_gb"]:.3f} |

Ratio ours / reference: **{r["ratio_ours_to_reference"]:.3f}** ({verdict} the target of at most
{r["target_ratio"]}). Loaders built in {r["build_s"]} s; build + batches {r["total_s"]} s. Process peak RssAnon
{r["process_peak_rss_anon_gb"]:.3f} GB, max RSS {r["max_rss_gb"]:.3f} GB (includes the Python/torch runtime).

Memory is `RssAnon` from `/proc/self/status`, sampled every 2 ms. The reference figure is computed, not
measured: it counts only the 40 order/eye copies of the training movie and the loaded movie.
"""


def main() -> None:
    """Parse arguments, run once, write JSON and Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--neurons", type=int, default=60)
    parser.add_argument("--batches", type=int, default=1, help="batches per loader and split; 0 = full pass")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    result = run(args.sessions, args.neurons, args.batches, args.batch_size, args.seed)
    command = (
        f"python benchmarks/hoefling_memory_benchmark.py --sessions {args.sessions} --neurons {args.neurons} "
        f"--batches {args.batches} --batch-size {args.batch_size} --seed {args.seed}"
    )
    result["command"] = command
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hoefling_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    report = markdown(result, command)
    (args.out / "hoefling_memory.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
