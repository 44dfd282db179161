"""The shared optimizer / LR-scheduler set-up."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from openretina.models.optimizers import configure_optimizer_and_scheduler, metric_mode
from openretina.modules.losses import CorrelationLoss3d, PoissonLoss3d


def _parameters() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(3))]


def test_default_is_adamw_with_plateau_on_the_given_metric() -> None:
    config = configure_optimizer_and_scheduler(_parameters(), 0.01, monitor="val_evaluation_loss", mode="max")
    optimizer = config["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == 0.01
    assert optimizer.defaults["weight_decay"] == 0.01
    schedule = config["lr_scheduler"]
    assert isinstance(schedule, dict)
    scheduler = schedule["scheduler"]
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert schedule["monitor"] == "val_evaluation_loss"
    assert scheduler.mode == "max"
    assert scheduler.factor == pytest.approx(0.3)
    assert scheduler.patience == 5
    assert scheduler.threshold == pytest.approx(0.0005)
    assert scheduler.threshold_mode == "abs"
    assert scheduler.min_lrs == [pytest.approx(0.01 * 0.027)]


def test_configs_are_instantiated_and_lightning_keys_split_off() -> None:
    root = OmegaConf.create(
        {
            "model": {"learning_rate": 0.02},
            "optimizer": {"_target_": "torch.optim.SGD", "lr": "${model.learning_rate}", "momentum": 0.9},
            "lr_scheduler": {
                "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                "mode": "min",
                "factor": 0.5,
                "monitor": "val_loss",
                "interval": "epoch",
                "frequency": 2,
            },
        }
    )
    config = configure_optimizer_and_scheduler(
        _parameters(), 0.02, "val_evaluation_loss", "max", root.optimizer, root.lr_scheduler
    )
    optimizer = config["optimizer"]
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["lr"] == pytest.approx(0.02)  # interpolation resolved through the parent config
    schedule = config["lr_scheduler"]
    assert isinstance(schedule, dict)
    assert schedule["monitor"] == "val_loss"
    assert schedule["frequency"] == 2
    assert schedule["scheduler"].mode == "min"
    assert schedule["scheduler"].min_lrs == [pytest.approx(0.02 * 0.5**3)]


def test_one_cycle_gets_total_steps_from_the_trainer_estimate() -> None:
    config = configure_optimizer_and_scheduler(
        _parameters(),
        0.01,
        "val_evaluation_loss",
        "max",
        lr_scheduler_config={"_target_": "torch.optim.lr_scheduler.OneCycleLR", "max_lr": 0.01, "interval": "step"},
        estimate_stepping_batches=lambda: 17,
    )
    schedule = config["lr_scheduler"]
    assert isinstance(schedule, dict)
    assert schedule["scheduler"].total_steps == 17
    assert schedule["interval"] == "step"


def test_one_cycle_without_trainer_or_total_steps_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="total_steps"):
        configure_optimizer_and_scheduler(
            _parameters(), 0.01, "m", "max", lr_scheduler_config={"_target_": "torch.optim.lr_scheduler.OneCycleLR"}
        )


def test_metric_mode_follows_the_metric() -> None:
    assert metric_mode(CorrelationLoss3d(avg=True, negate=False)) == "max"
    assert metric_mode(CorrelationLoss3d(avg=True)) == "min"  # negated correlation is a loss
    assert metric_mode(PoissonLoss3d(avg=True)) == "min"

    class Score(torch.nn.Module):
        higher_is_better = True

    assert metric_mode(Score()) == "max"
