"""Time an openretina package's in-memory training loaders in a fresh process (``dataloader_benchmark.py``).

Run with the Python of any environment that has an ``openretina`` installed: this project's ``.venv`` (mode
``ours_fresh_process``) or a separate virtual environment with the reference package ``openretina==1.1.1``
(mode ``reference_package``, ``--reference-python``). Only the API both share is used (containers,
``multiple_movies_dataloaders``, ``LongCycler``), so both are timed by the same code, each in a new process
whose allocator has no history. Prints one JSON line per repeat. The data are the benchmark's own (same sizes,
same generator and seed: 2 sessions sharing a 2 x 18 x 16 px movie of 16,200 training frames, 50 neurons each,
batches of 128 chunks of 50 frames, 15 validation clips of 150).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

CHANNELS, HEIGHT, WIDTH = 2, 18, 16
TRAIN_FRAMES, TEST_FRAMES = 16_200, 750
CLIP, N_VAL_CLIPS, CHUNK, BATCH = 150, 15, 50, 128
NEURONS_PER_SESSION = 50
SESSIONS = ("session_1", "session_2")


def in_memory_dataset(seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """The benchmark's data (also used by ``dataloader_benchmark.py``): a shared random movie and random responses
    for two sessions, in RAM, as ``(movies, responses)`` dictionaries of the containers of whichever package runs."""
    from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit

    rng = np.random.default_rng(seed)
    movie = MoviesTrainTestSplit(
        train=rng.standard_normal((CHANNELS, TRAIN_FRAMES, HEIGHT, WIDTH), dtype=np.float32),
        test=rng.standard_normal((CHANNELS, TEST_FRAMES, HEIGHT, WIDTH), dtype=np.float32),
    )
    responses = {
        session: ResponsesTrainTestSplit(
            train=rng.random((NEURONS_PER_SESSION, TRAIN_FRAMES), dtype=np.float32),
            test=rng.random((NEURONS_PER_SESSION, TEST_FRAMES), dtype=np.float32),
        )
        for session in SESSIONS
    }
    return {session: movie for session in SESSIONS}, responses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from openretina.data_io.base_dataloader import multiple_movies_dataloaders
    from openretina.data_io.cyclers import LongCycler

    movies, responses = in_memory_dataset()
    loaders = multiple_movies_dataloaders(responses, movies, CHUNK, BATCH, 42, CLIP, N_VAL_CLIPS)["train"]
    for _ in range(args.repeats):
        samples = 0
        start, start_cpu = time.perf_counter(), time.thread_time()
        for _ in range(args.epochs):
            for _, batch in LongCycler(loaders):
                samples += batch.inputs.shape[0]
        seconds, cpu_seconds = time.perf_counter() - start, time.thread_time() - start_cpu
        print(json.dumps({"samples_per_s": samples / seconds, "samples_per_cpu_s": samples / cpu_seconds}), flush=True)


if __name__ == "__main__":
    main()
