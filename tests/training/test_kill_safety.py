"""A run killed with SIGKILL leaves only complete checkpoints: every `*.ckpt` loads, and the run resumes.

Checkpoints are written to a hidden temporary file next to the target, synced, then renamed
(`openretina.training.checkpoints.AtomicCheckpointIO`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from openretina.cli import train as train_cli
from openretina.training.checkpoints import load_model_checkpoint, remove_partial_checkpoints

from .conftest import TINY_CORE, TINY_DATA

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX-only")

# A checkpoint after every step, many epochs: the process is always about to write or writing one.
LONG_RUN = [
    *TINY_DATA,
    *TINY_CORE,
    "trainer.max_epochs=1000",
    "+trainer.limit_val_batches=1",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "training_callbacks.model_checkpoint.every_n_train_steps=1",
    "~training_callbacks.early_stopping",
]


def start(command: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output in ``log`` (a pipe nobody reads could fill up and stall the child)."""
    with open(log, "wb") as output:
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=cwd)


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, timeout_s: float, what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the child exited ({process.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def test_write_interrupted_by_sigkill_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    """Killed half way through writing version 2, the file still holds version 1 and nothing else is `*.ckpt`."""
    target, marker = tmp_path / "checkpoints" / "last.ckpt", tmp_path / "half_written"
    child = textwrap.dedent(
        f"""
        import io, time, torch
        from pathlib import Path
        from openretina.training.checkpoints import AtomicCheckpointIO

        AtomicCheckpointIO().save_checkpoint({{"version": 1, "w": torch.ones(1000)}}, {str(target)!r})
        real_save = torch.save

        def save_half_then_hang(obj, handle, *args, **kwargs):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            handle.write(data[: len(data) // 2])
            handle.flush()
            Path({str(marker)!r}).touch()
            time.sleep(600)

        torch.save = save_half_then_hang
        AtomicCheckpointIO().save_checkpoint({{"version": 2, "w": torch.zeros(1000)}}, {str(target)!r})
        """
    )
    log = tmp_path / "child.log"
    process = start([sys.executable, "-c", child], log, tmp_path)
    try:
        wait_for(marker.exists, process, log, 120, "the second write started")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert [p.name for p in target.parent.glob("*.ckpt")] == ["last.ckpt"]
    checkpoint = torch.load(target, weights_only=True)
    assert checkpoint["version"] == 1 and torch.equal(checkpoint["w"], torch.ones(1000))
    # The half-written bytes are in a hidden temporary file, which the cleanup before a resume removes.
    (leftover,) = target.parent.glob(".last.ckpt.*.tmp")
    assert 0 < leftover.stat().st_size
    assert remove_partial_checkpoints(target.parent) == [leftover] and not leftover.exists()


def test_training_run_killed_mid_epoch_leaves_loadable_checkpoints_and_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    log = tmp_path / "train.log"
    process = start([sys.executable, "-m", "openretina", "train", f"hydra.run.dir={run_dir}", *LONG_RUN], log, tmp_path)
    checkpoints = run_dir / "checkpoints"
    try:
        # Wait for a checkpoint, then for it to be rewritten (training goes on), and kill at once: the child is
        # then in the next steps, writing the next checkpoints.
        wait_for(lambda: (checkpoints / "last.ckpt").exists(), process, log, 240, "the first checkpoint")
        first = (checkpoints / "last.ckpt").stat().st_mtime_ns
        wait_for(lambda: (checkpoints / "last.ckpt").stat().st_mtime_ns != first, process, log, 120, "a rewrite")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL

    saved = sorted(checkpoints.glob("*.ckpt"))
    assert any(path.name == "last.ckpt" for path in saved) and any(path.name.startswith("epoch=") for path in saved)
    for path in saved:
        checkpoint = torch.load(path, weights_only=True)
        assert checkpoint["global_step"] >= 1, path
        load_model_checkpoint(path)
    killed_at = torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"]

    # Resuming continues from the last complete checkpoint and removes any temporary file of the killed writer.
    resume = [f"hydra.run.dir={run_dir}", "ckpt_path=last", f"+trainer.max_steps={killed_at + 2}"]
    assert train_cli.main([*LONG_RUN, *resume]) == 0
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == killed_at + 2
    assert not list(checkpoints.glob(".*.tmp"))
