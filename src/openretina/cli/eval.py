"""``openretina eval evaluation.model_path=CKPT [--config-name NAME] [overrides]``: evaluate a trained model.

Uses the same config as training (default ``synthetic_core_readout``); every shipped config includes the
``evaluation`` group, so no ``+evaluation=default`` is needed. Writes ``evaluation/<split>_per_neuron.csv`` and
``<split>_summary.json`` in the run directory and prints the summary.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig

from openretina.cli.hydra_app import run_hydra_task
from openretina.training.evaluate import evaluate_model

__all__ = ["evaluate_model", "main"]


def _eval_task(cfg: DictConfig) -> float:
    return evaluate_model(cfg)


def main(argv: Sequence[str]) -> int:
    """Entry point of ``openretina eval``."""
    return run_hydra_task(argv, _eval_task, prog="openretina eval")
