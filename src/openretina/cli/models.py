"""`openretina models`: list the registered pre-trained models; `openretina models convert` converts a checkpoint.

The listing reads the same registry as the loaders (:mod:`openretina.hub.registry`), so it is always in sync.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from openretina.hub.registry import PretrainedModel, list_pretrained_models

_COLUMNS = ("name", "input (C,H,W)", "rate (Hz)", "species", "sha256", "location")


def _row(model: PretrainedModel) -> tuple[str, ...]:
    rate = f"{model.frame_rate_hz:g}" if model.frame_rate_hz is not None else "-"
    name = model.name if model.superseded_by is None else f"{model.name} (old; use {model.superseded_by})"
    location = model.hub_path if model.hub_path is not None else f"package: {model.package_path}"
    sha = model.sha256[:12] if model.sha256 else "unknown"
    return (name, "x".join(str(v) for v in model.input_shape), rate, model.species, sha, str(location))


def format_table(models: Sequence[PretrainedModel]) -> str:
    """A plain-text table of ``models``, one row each, columns aligned."""
    rows = [_COLUMNS, *(_row(model) for model in models)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="openretina models",
        description="List the pre-trained models that load_core_readout_from_remote knows by name.",
    )
    parser.add_argument("--all", action="store_true", help="also list names of earlier releases")
    parser.add_argument("--json", action="store_true", help="print the registry entries as JSON")
    commands = parser.add_subparsers(dest="command")
    convert = commands.add_parser(
        "convert", help="convert a reference Lightning .ckpt into openretina's safetensors format (read safely)"
    )
    convert.add_argument("checkpoint", type=Path, help="the .ckpt file")
    convert.add_argument("directory", type=Path, help="output folder (model.safetensors, config.json, README.md)")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "convert":
        from openretina.hub.pretrained import convert_checkpoint

        directory = convert_checkpoint(args.checkpoint, args.directory)
        print(f"wrote {directory}")
        return 0
    models = list_pretrained_models(include_deprecated=args.all)
    if args.json:
        print(json.dumps([dataclasses.asdict(model) for model in models], indent=2))
    else:
        print(format_table(models))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
