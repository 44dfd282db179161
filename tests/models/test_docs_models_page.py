"""The code on docs/models.md runs (blocks that need a real dataset are skipped)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
NEEDS_DATA = "train_dataloader"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_models_page_examples_run() -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 4
    namespace: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for block in blocks:
            if NEEDS_DATA not in block:
                exec(compile(block, str(DOC), "exec"), namespace)
    custom_model = namespace["custom_model"]
    assert isinstance(custom_model, torch.nn.Module)
    assert custom_model(torch.zeros(1, 2, 7, 16, 18)).shape == (1, 7, 150)
