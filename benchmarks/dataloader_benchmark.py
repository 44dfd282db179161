"""Dataloader benchmark: our generic movie dataloaders against a reference-style implementation.

Dataset sized like Höfling et al. low-res: 2 sessions sharing a 2 x 18 x 16 px training movie of 16,200 frames
(108 clips of 150 frames, 15 for validation), 50 neurons each, batches of 128 chunks x 50 frames. Measured in
one process, the two implementations alternating so machine load hits both alike:

* ``in_memory``: training-loader throughput (frames/s and samples/s; one sample = one 50-frame chunk) for
  ``ours`` (:func:`multiple_movies_dataloaders`, index views + one gather per batch) and ``reference_style``
  (concatenated split copies, item-by-item slicing, ``default_collate``; written here as the baseline).
* ``training``: the share of a training step spent waiting for the next batch, for a stand-in model of the
  Höfling low-res shape (Conv3d 2->16 (21,11,11), Conv3d 16->16 (11,5,5), linear readout per session, Adam).
* ``memmap``: our loaders over a memory-mapped ``.npy`` movie (6 GB at ``--scale 1``) with an anonymous-memory
  budget of 1.5 GB (scaled alike): throughput and peak ``RssAnon`` growth while building the loaders and
  iterating training and validation batches. Pages of the mapped file count as ``RssFile``, not ``RssAnon``.

Run: ``.venv/bin/python benchmarks/dataloader_benchmark.py [--scale 0.1]`` (writes
``benchmarks/results/dataloader.{json,md}``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from dataloader_process_runner import (  # the data both packages are timed on; a sibling script, not a package
    BATCH,
    CHANNELS,
    CHUNK,
    CLIP,
    HEIGHT,
    N_VAL_CLIPS,
    NEURONS_PER_SESSION,
    SESSIONS,
    TEST_FRAMES,
    TRAIN_FRAMES,
    WIDTH,
    in_memory_dataset,
)
from openretina.data_io._memory import PeakRssAnon
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.base_dataloader import DataPoint, multiple_movies_dataloaders
from openretina.data_io.cyclers import LongCycler

FRAME_BYTES = CHANNELS * HEIGHT * WIDTH * 4
GB = 1024**3


# --- the reference-style baseline: copies per split, item-by-item slicing, default collate ----------------------


class _ReferenceStyleDataset(Dataset):
    """Movie ``(C, T, H, W)`` and responses ``(T, N)`` as float32 tensors; an index is a start frame."""

    def __init__(self, movie: torch.Tensor, responses: torch.Tensor, chunk: int) -> None:
        self.movie, self.responses, self.chunk = movie, responses, chunk

    def __len__(self) -> int:
        return self.movie.shape[1] // self.chunk

    def __getitem__(self, start: int) -> DataPoint:
        return DataPoint(self.movie[:, start : start + self.chunk], self.responses[start : start + self.chunk])


class _ReferenceStyleSampler(Sampler[int]):
    """Start frames shifted by up to one chunk, clamped, and shuffled with the global numpy RNG."""

    def __init__(self, starts: list[int], chunk: int, n_frames: int) -> None:
        self.starts, self.chunk, self.n_frames = np.asarray(starts), chunk, n_frames

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[int]:
        shifted = np.minimum(
            self.starts + np.random.randint(0, self.chunk, len(self.starts)),  # noqa: NPY002
            self.n_frames - self.chunk,
        )
        return iter(shifted[np.random.permutation(len(shifted))].tolist())  # noqa: NPY002


def reference_style_train_loaders(
    movies: dict[str, MoviesTrainTestSplit], responses: dict[str, ResponsesTrainTestSplit], seed: int = 42
) -> dict[str, DataLoader]:
    """Training loaders built the way the reference system builds them (for comparison only)."""
    loaders = {}
    for session, movie in movies.items():
        n_clips = movie.train.shape[1] // CLIP
        val = np.random.RandomState(seed).choice(n_clips, N_VAL_CLIPS, replace=False)
        train_clips = [c for c in range(n_clips) if c not in set(val.tolist())]
        movie_tensor = torch.as_tensor(movie.train, dtype=torch.float32)
        train_movie = torch.cat([movie_tensor[:, c * CLIP : (c + 1) * CLIP] for c in train_clips], dim=1)
        response_tensor = torch.as_tensor(np.asarray(responses[session].train).T, dtype=torch.float32)
        train_responses = torch.cat([response_tensor[c * CLIP : (c + 1) * CLIP] for c in train_clips], dim=0)
        starts = list(range(0, train_movie.shape[1], CHUNK))
        sampler = _ReferenceStyleSampler(starts, CHUNK, train_movie.shape[1])
        dataset = _ReferenceStyleDataset(train_movie, train_responses, CHUNK)
        loaders[session] = DataLoader(dataset, sampler=sampler, batch_size=BATCH, drop_last=True)
    return loaders


# --- data -------------------------------------------------------------------------------------------------------


def write_memmap_dataset(directory: Path, n_frames: int, frames_per_chunk: int = 100_000) -> tuple[Path, Path]:
    """Write a ``(C, T, H, W)`` movie and ``(N, T)`` responses as float32 ``.npy`` files, chunk by chunk."""
    rng = np.random.default_rng(1)
    movie_path, responses_path = directory / "movie.npy", directory / "responses.npy"
    movie = np.lib.format.open_memmap(movie_path, "w+", np.float32, (CHANNELS, n_frames, HEIGHT, WIDTH))
    responses = np.lib.format.open_memmap(responses_path, "w+", np.float32, (NEURONS_PER_SESSION, n_frames))
    for start in range(0, n_frames, frames_per_chunk):
        stop = min(start + frames_per_chunk, n_frames)
        movie[:, start:stop] = rng.standard_normal((CHANNELS, stop - start, HEIGHT, WIDTH), dtype=np.float32)
        responses[:, start:stop] = rng.random((NEURONS_PER_SESSION, stop - start), dtype=np.float32)
    movie.flush()
    responses.flush()
    del movie, responses
    return movie_path, responses_path


# --- measurements -----------------------------------------------------------------------------------------------


def fresh_process_epochs(python: Path, epochs: int) -> dict[str, float]:
    """The loaders of the ``openretina`` that ``python`` imports, on the same data, timed in a new process (imports
    and set-up excluded): ours with this venv's Python, the reference package with a separate venv's."""
    runner = Path(__file__).with_name("dataloader_process_runner.py")
    command = [str(python), str(runner), "--epochs", str(epochs)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return {**result, "frames_per_s": result["samples_per_s"] * CHUNK}


def time_epochs(loaders: dict[str, DataLoader], epochs: int) -> dict[str, float]:
    """Iterate ``epochs`` epochs of the LongCycler over ``loaders``; frames/s and samples/s."""
    samples = frames = 0
    start, start_cpu = time.perf_counter(), time.thread_time()
    for _ in range(epochs):
        for _, batch in LongCycler(loaders, seed=0):
            samples += batch.inputs.shape[0]
            frames += batch.inputs.shape[0] * batch.inputs.shape[2]
    seconds, cpu_seconds = time.perf_counter() - start, time.thread_time() - start_cpu
    return {
        "samples_per_s": samples / seconds,
        "frames_per_s": frames / seconds,
        "samples_per_cpu_s": samples / cpu_seconds,
        "seconds": seconds,
    }


class StandInModel(nn.Module):
    """Höfling low-res shaped stand-in: two Conv3d layers and a linear readout per session.

    Input: (batch, 2, time, 18, 16). Output: (batch, time - 30, neurons).
    """

    def __init__(self, n_neurons: dict[str, int]) -> None:
        super().__init__()
        self.core = nn.Sequential(
            nn.Conv3d(CHANNELS, 16, (21, 11, 11)),
            nn.ELU(),
            nn.Conv3d(16, 16, (11, 5, 5), padding=(0, 2, 2)),
            nn.ELU(),
        )
        features = 16 * (HEIGHT - 10) * (WIDTH - 10)
        self.readouts = nn.ModuleDict({s: nn.Linear(features, n) for s, n in n_neurons.items()})

    def forward(self, x: torch.Tensor, session: str) -> torch.Tensor:
        core = self.core(x)  # (B, 16, T', H', W')
        core = core.permute(0, 2, 1, 3, 4).flatten(2)  # (B, T', features)
        return nn.functional.softplus(self.readouts[session](core))


def time_training(batches: Iterable[tuple[str, DataPoint]], steps: int) -> dict[str, float]:
    """Train the stand-in model for ``steps`` steps; seconds waiting for data vs computing."""
    torch.manual_seed(0)
    model = StandInModel(dict.fromkeys(SESSIONS, NEURONS_PER_SESSION))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    iterator = iter(batches)
    wait = compute = 0.0
    for step in range(steps + 1):  # step 0 warms up and is not counted
        t0 = time.perf_counter()
        session, batch = next(iterator)
        t1 = time.perf_counter()
        prediction = model(batch.inputs, session)
        loss = nn.functional.poisson_nll_loss(prediction, batch.targets[:, -prediction.shape[1] :], log_input=False)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        t2 = time.perf_counter()
        if step:
            wait += t1 - t0
            compute += t2 - t1
    return {"wait_s": wait, "compute_s": compute, "data_share": wait / (wait + compute), "steps": steps}


def endless(loaders: dict[str, DataLoader]) -> Iterator[tuple[str, DataPoint]]:
    """Epoch after epoch of a LongCycler."""
    while True:
        yield from LongCycler(loaders, seed=0)


def alternate(runs: dict[str, Callable[[], dict[str, float]]], repeats: int, key: str) -> dict[str, Any]:
    """Run each callable ``repeats`` times, interleaved; keep every result and the median of ``key``."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            results[name].append(run())
    return {
        name: {
            "median_" + key: statistics.median(r[key] for r in rs),
            "best_" + key: max(r[key] for r in rs),
            "median_samples_per_cpu_s": statistics.median(r["samples_per_cpu_s"] for r in rs),
            "runs": rs,
        }
        for name, rs in results.items()
    }


def memmap_benchmark(scale: float, directory: Path, max_batches: int) -> dict[str, Any]:
    """Our loaders over a memory-mapped movie of ``6 GB * scale``; peak RssAnon growth vs a ``1.5 GB * scale``
    budget."""
    file_bytes, budget = int(6 * GB * scale), int(1.5 * GB * scale)
    n_frames = file_bytes // FRAME_BYTES // CLIP * CLIP
    t0 = time.perf_counter()
    movie_path, responses_path = write_memmap_dataset(directory, n_frames)
    write_s = time.perf_counter() - t0
    rng = np.random.default_rng(2)
    test_movie = rng.standard_normal((CHANNELS, TEST_FRAMES, HEIGHT, WIDTH), dtype=np.float32)
    test_responses = rng.random((NEURONS_PER_SESSION, TEST_FRAMES), dtype=np.float32)
    n_val_clips = max(1, n_frames // CLIP // 10)
    with PeakRssAnon() as memory:
        t0 = time.perf_counter()
        movie = MoviesTrainTestSplit(np.load(movie_path, mmap_mode="r"), test=test_movie, norm_mean=0.0, norm_std=1.0)
        responses = ResponsesTrainTestSplit(np.load(responses_path, mmap_mode="r"), test=test_responses)
        loaders = multiple_movies_dataloaders(
            {SESSIONS[0]: responses}, {SESSIONS[0]: movie}, CHUNK, BATCH, 42, CLIP, n_val_clips
        )
        build_s = time.perf_counter() - t0
        train = loaders["train"][SESSIONS[0]]
        samples = frames = 0
        t0 = time.perf_counter()
        for index, batch in enumerate(train):
            samples += batch.inputs.shape[0]
            frames += batch.inputs.shape[0] * batch.inputs.shape[2]
            del batch
            if index + 1 >= max_batches:
                break
        train_s = time.perf_counter() - t0
        for batch in loaders["validation"][SESSIONS[0]]:
            del batch
    return {
        "file_gb": (movie_path.stat().st_size + responses_path.stat().st_size) / GB,
        "budget_gb": budget / GB,
        "n_frames": n_frames,
        "write_s": write_s,
        "build_loaders_s_incl_finiteness_check": build_s,
        "train_batches": len(train) if max_batches >= len(train) else max_batches,
        "samples_per_s": samples / train_s,
        "frames_per_s": frames / train_s,
        "peak_rss_anon_growth_gb": memory.growth / GB,
        "peak_rss_anon_gb": memory.peak / GB,
        "within_budget": memory.growth < budget,
    }


def markdown(report: dict[str, Any]) -> str:
    """Human-readable summary of ``report``."""
    memory, training, machine = report["in_memory"], report["training"], report["machine"]
    ours, ref = memory["ours"]["median_samples_per_s"], memory["reference_style"]["median_samples_per_s"]
    lines = [
        "# Dataloader benchmark",
        "",
        f"Machine: {machine['cpus']} CPUs, torch {machine['torch']}, {machine['platform']}; "
        f"torch threads: {machine['loader_threads']} while timing loaders, {machine['threads']} for training. "
        f"Command: `{report['command']}`.",
        "",
        f"Data: {len(SESSIONS)} sessions, movie {CHANNELS}x{HEIGHT}x{WIDTH} px, {TRAIN_FRAMES} training frames, "
        f"{NEURONS_PER_SESSION} neurons per session; batch {BATCH} chunks x {CHUNK} frames.",
        "",
        "## In-memory training loaders (median of interleaved repeats)",
        "",
        "| implementation | samples/s (median) | frames/s (median) | samples/s (best) | samples per CPU-second |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, result in memory.items():
        lines.append(
            f"| {name} | {result['median_samples_per_s']:,.0f} | {result['median_samples_per_s'] * CHUNK:,.0f} | "
            f"{result['best_samples_per_s']:,.0f} | {result['median_samples_per_cpu_s']:,.0f} |"
        )
    cpu_ratio = memory["ours"]["median_samples_per_cpu_s"] / memory["reference_style"]["median_samples_per_cpu_s"]
    lines += [
        "",
        f"Speed-up (ours / reference-style): **{ours / ref:.2f}x** wall-clock median, {cpu_ratio:.2f}x per "
        f"CPU-second of the loading thread (less sensitive to other load on the machine; load average at start: "
        f"{machine['load_average']}).",
    ]
    if "reference_package" in memory:
        package, fresh = memory["reference_package"], memory["ours_fresh_process"]
        median_ratio = fresh["median_samples_per_s"] / package["median_samples_per_s"]
        best_ratio = fresh["best_samples_per_s"] / package["best_samples_per_s"]
        lines += [
            "",
            f"Speed-up (ours / the reference package `openretina==1.1.1`, same data, its own loaders and cycler, "
            f"each in a fresh process): **{median_ratio:.2f}x** wall-clock median, best run {best_ratio:.2f}x.",
        ]
    lines += [
        "",
        "## Share of a training step waiting for data (stand-in Höfling low-res model, Adam)",
        "",
        "| implementation | wait s | compute s | data share |",
        "|---|---:|---:|---:|",
    ]
    for name, result in training.items():
        lines.append(f"| {name} | {result['wait_s']:.3f} | {result['compute_s']:.3f} | {result['data_share']:.1%} |")
    if "memmap" in report:
        mm = report["memmap"]
        lines += [
            "",
            f"## Memory-mapped movie ({mm['file_gb']:.2f} GB on disk, RssAnon budget {mm['budget_gb']:.2f} GB)",
            "",
            f"- {mm['n_frames']:,} frames; loaders built in {mm['build_loaders_s_incl_finiteness_check']:.1f} s "
            "(includes the chunked NaN/inf check of the whole file)",
            f"- training throughput over {mm['train_batches']} batches: {mm['samples_per_s']:,.0f} samples/s "
            f"({mm['frames_per_s']:,.0f} frames/s)",
            f"- peak RssAnon growth: {mm['peak_rss_anon_growth_gb'] * 1024:.0f} MB "
            f"({'within' if mm['within_budget'] else 'OVER'} budget); peak RssAnon of the whole process "
            f"(Python, torch, the in-memory benchmark's data): {mm['peak_rss_anon_gb']:.2f} GB",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="memmap file = 6 GB * scale, budget = 1.5 GB * scale")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats of each throughput measurement")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per throughput measurement")
    parser.add_argument("--train-steps", type=int, default=10, help="timed stand-in training steps per loader")
    parser.add_argument("--memmap-batches", type=int, default=400, help="training batches read from the memmap")
    parser.add_argument("--skip-memmap", action="store_true", help="skip the larger-than-budget memmap run")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where to write the memmap files")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads for training")
    parser.add_argument(
        "--loader-threads", type=int, default=1, help="torch threads while timing loaders (1: CPU time is exact)"
    )
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--reference-python", type=Path, default=None, help="Python of a venv with openretina==1.1.1 (adds its loader)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.loader_threads)

    movies, responses = in_memory_dataset()
    ours = multiple_movies_dataloaders(responses, movies, CHUNK, BATCH, 42, CLIP, N_VAL_CLIPS)["train"]
    reference = reference_style_train_loaders(movies, responses)
    in_memory_runs: dict[str, Callable[[], dict[str, float]]] = {
        "ours": lambda: time_epochs(ours, args.epochs),
        "reference_style": lambda: time_epochs(reference, args.epochs),
    }
    if args.reference_python is not None:
        # A long-lived process and a fresh one can differ by 2x: whether a freed ~15 MB batch is recycled or
        # fresh pages are zeroed by the kernel depends on the allocator's history. Compare fresh with fresh.
        in_memory_runs["ours_fresh_process"] = lambda: fresh_process_epochs(Path(sys.executable), args.epochs)
        in_memory_runs["reference_package"] = lambda: fresh_process_epochs(args.reference_python, args.epochs)
    report: dict[str, Any] = {
        "command": "python benchmarks/dataloader_benchmark.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("output_dir", "tmp_dir")),
        "machine": {
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "loader_threads": args.loader_threads,
            "torch": torch.__version__,
            "platform": platform.platform(),
            "load_average": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        },
        "in_memory": alternate(in_memory_runs, args.repeats, "samples_per_s"),
    }
    torch.set_num_threads(args.threads)
    report["training"] = {
        "ours": time_training(endless(ours), args.train_steps),
        "reference_style": time_training(endless(reference), args.train_steps),
    }
    torch.set_num_threads(args.loader_threads)
    if not args.skip_memmap:
        with tempfile.TemporaryDirectory(dir=args.tmp_dir) as directory:
            report["memmap"] = memmap_benchmark(args.scale, Path(directory), args.memmap_batches)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "dataloader.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.output_dir / "dataloader.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
