"""Run a Hydra task from ``openretina <command> [hydra arguments]`` with the configs shipped in the package.

Hydra's own command line is used unchanged: ``--config-name NAME`` (``-cn``), ``--config-path DIR`` (``-cp``),
``key=value``, ``+key=value``, ``~key``, ``-m`` / ``--multirun``, ``--cfg job``, ``--help``. The default config
directory is ``openretina/configs`` inside the installed package, so a wheel install has it (the reference's
lived outside the package); a relative ``--config-path`` is taken relative to the current directory.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from openretina.errors import DataFileNotFoundError

__all__ = ["CONFIG_DIR", "DEFAULT_CONFIG_NAME", "run_hydra_task"]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG_NAME = "synthetic_core_readout"
_CONFIG_PATH_FLAGS = ("--config-path", "-cp")


def _absolute_config_path(argv: Sequence[str]) -> tuple[list[str], str]:
    """Remove a ``--config-path`` argument from ``argv``; return the rest and the absolute, existing directory."""
    rest: list[str] = []
    config_path: str | None = None
    arguments = list(argv)
    while arguments:
        argument = arguments.pop(0)
        flag, equals, value = argument.partition("=")
        if flag in _CONFIG_PATH_FLAGS:
            if not equals:
                if not arguments:
                    raise SystemExit(f"{flag} needs a directory")
                value = arguments.pop(0)
            config_path = value
        else:
            rest.append(argument)
    directory = Path(config_path).expanduser().resolve() if config_path else CONFIG_DIR
    if not directory.is_dir():
        raise DataFileNotFoundError(
            f"config directory {str(directory)!r} does not exist; pass an existing --config-path."
        )
    return rest, str(directory)


def _quote_values_with_equals(argument: str) -> str:
    """Quote the value of ``key=a=b``: checkpoint names contain ``=`` (``epoch=03_val_...ckpt``), which Hydra's
    override grammar rejects unquoted, so ``evaluation.model_path=<checkpoint>`` would otherwise fail."""
    if argument.startswith("-"):
        return argument
    key, _, value = argument.partition("=")
    if "=" not in value or value[:1] in "'\"[{(" or "'" in value:
        return argument
    return f"{key}='{value}'"


def run_hydra_task(argv: Sequence[str], task: Callable[[DictConfig], Any], prog: str) -> int:
    """Run ``task`` as a Hydra app with ``argv`` as its command line; returns the exit status (0 on success)."""
    import openretina.training.resolvers  # noqa: F401  (registers ${len:...})

    arguments, config_dir = _absolute_config_path(argv)
    saved_argv = sys.argv
    hydra_argv = [prog, *(_quote_values_with_equals(argument) for argument in arguments)]

    def task_with_process_argv(cfg: DictConfig) -> Any:
        # Lightning's DDP launcher re-runs `sys.argv` (plus the Hydra run dir) for the other ranks, so while the
        # task runs it must be the process's real command line (e.g. `openretina train ...`), not Hydra's view.
        sys.argv = saved_argv
        try:
            return task(cfg)
        finally:
            sys.argv = hydra_argv

    sys.argv = hydra_argv
    try:
        hydra.main(version_base="1.3", config_path=config_dir, config_name=DEFAULT_CONFIG_NAME)(
            task_with_process_argv
        )()
    except SystemExit as exit_request:  # Hydra reports errors and exits with status 1
        code = exit_request.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved_argv
    return 0
