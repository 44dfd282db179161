"""`openretina models`: the registry as a table or JSON, and checkpoint conversion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openretina.cli.models import main
from openretina.hub import REGISTRY, load_pretrained

from .conftest import FIXTURE_CHECKPOINT

CURRENT = sorted(name for name, entry in REGISTRY.items() if entry.superseded_by is None)


def test_table_lists_current_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "name" and set(lines[1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == CURRENT
    row = next(line for line in lines if line.startswith("hoefling_2024_base_low_res "))
    assert row.split()[1:5] == ["2x18x16", "30", "mouse", "unknown"]
    assert row.endswith("model_checkpoints/27-11-2025/hoefling_2024_base_low_res.ckpt")


def test_all_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--all"])
    assert "hoefling_2024_base_high_res (old; use hoefling_2024_high_res)" in capsys.readouterr().out
    main(["--json"])
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == CURRENT
    published = [e for e in entries if e["name"] != "synthetic_retina_core_readout"]
    assert all(e["sha256"] is None and e["metrics"] is None for e in published)


def test_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", str(FIXTURE_CHECKPOINT), str(tmp_path / "out")]) == 0
    assert str(tmp_path / "out") in capsys.readouterr().out
    assert load_pretrained(tmp_path / "out").readout_keys() == [
        "session_1_synthetic_20240101",
        "session_2_synthetic_20240102",
    ]
