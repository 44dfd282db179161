"""Entry point of the `openretina` console script.

Each sub-command lives in its own module and is imported only when it runs, so `openretina --help`
stays fast and a missing optional dependency of one command never breaks another.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A sub-command: `module:function` is called with the remaining argv and returns an exit code."""

    target: str
    help: str


COMMANDS: dict[str, Command] = {
    "train": Command(
        "openretina.cli.train:main", "Train a model from a Hydra config (default: synthetic_core_readout)."
    ),
    "eval": Command(
        "openretina.cli.eval:main", "Evaluate a checkpoint: per-neuron table and summary (evaluation.model_path=...)."
    ),
    "create-data": Command("openretina.cli.create_data:main", "Write a synthetic dataset in the HDF5 layout."),
    "demo": Command("openretina.cli.demo:main", "Run the main job on the embedded synthetic retina."),
    "models": Command(
        "openretina.cli.models:main", "List the registered pre-trained models; `models convert` converts a checkpoint."
    ),
    "visualize": Command(
        "openretina.cli.visualize:main", "MEIs of every neuron and core channel, weight plots and an index.html page."
    ),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: openretina <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {cmd.help}" for name, cmd in COMMANDS.items()]
    lines += ["", "Run `openretina <command> --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if args[0] == "--version":
        from openretina import __version__

        print(f"openretina {__version__}")
        return 0
    name, rest = args[0], args[1:]
    command = COMMANDS.get(name)
    if command is None:
        print(f"openretina: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, function_name = command.target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    return int(function(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
