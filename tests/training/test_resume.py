"""An interrupted run resumed with `ckpt_path=last` ends exactly where an uninterrupted run does.

Checkpoints are written after every step, so the run can be interrupted in the middle of an epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from openretina.cli import train as train_cli

from .conftest import TINY_CORE, TINY_DATA

# 2 epochs of 4 training batches (2 per session); deterministic CPU settings.
RUN = [
    *TINY_DATA,
    *TINY_CORE,
    "dataloader.batch_size=4",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "+trainer.limit_val_batches=1",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "training_callbacks.model_checkpoint.every_n_train_steps=1",
]


def final_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    summary = json.loads((run_dir / "evaluation" / "test_summary.json").read_text())
    return state, summary


def test_resume_mid_epoch_matches_uninterrupted_run(tmp_path: Path) -> None:
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert train_cli.main([*RUN, f"hydra.run.dir={straight}"]) == 0
    # Stopped after 6 steps, 2 batches into the second epoch, then resumed in the same run directory.
    assert train_cli.main([*RUN, f"hydra.run.dir={interrupted}", "+trainer.max_steps=6"]) == 0
    assert torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    assert train_cli.main([*RUN, f"hydra.run.dir={interrupted}", "ckpt_path=last"]) == 0
    expected_state, expected_summary = final_state(straight)
    state, summary = final_state(interrupted)
    assert torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    for name, tensor in expected_state.items():
        torch.testing.assert_close(state[name], tensor, rtol=0, atol=1e-6)
    for key in ("corr_to_avg_mean", "mse_to_avg_mean", "poisson_loss_mean"):
        assert abs(summary[key] - expected_summary[key]) <= 1e-6
