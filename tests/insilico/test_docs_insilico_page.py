"""The code on docs/insilico.md runs against a local mirror of the model hub serving the reference fixture.

The page's first block is the seed page's published snippet with 50 frames instead of 30; the test below proves
it is the same program (equal syntax trees), so test_seed_page_mirror.py, which runs the seed page's snippet
itself with 30 and with 50 frames, covers it. The other blocks are run here.
"""

from __future__ import annotations

import ast
import re
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "insilico.md"
LISTINGS = Path(__file__).resolve().with_name("listings")
local_hub = runpy.run_path(str(LISTINGS / "local_hub.py"))
seed_page = runpy.run_path(str(LISTINGS / "seed_page.py"))


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Any]:
    with local_hub["serve_fixture_as"](tmp_path) as server:
        yield server


def test_first_block_is_the_published_snippet_with_50_frames() -> None:
    published = seed_page["optimisation_snippet"]()
    assert "time_steps=30" in published
    corrected = seed_page["with_frames"](published, 50)
    assert ast.dump(ast.parse(python_blocks()[0])) == ast.dump(ast.parse(corrected))


@pytest.mark.slow
def test_other_examples_run(mirror: Any) -> None:
    namespace: dict[str, Any] = {}
    for block in python_blocks()[1:]:
        exec(compile(block, str(DOC), "exec"), namespace)
    assert mirror.requests == [local_hub["hub_request"]()]  # downloaded once, then loaded from the cache
    result, meis, mds_result = (namespace[name] for name in ("result", "meis", "mds_result"))
    assert result.objective_history[-1, 0] > result.objective_history[0, 0]
    assert meis.stimulus.shape == (4, 2, 50, 18, 16)
    assert (meis.objective_history[-1] > meis.objective_history[0]).all()
    assert mds_result.objective_history[-1, 0] > mds_result.objective_history[0, 0]
    model = namespace["model"]
    assert not model.training and all(p.grad is None for p in model.parameters())  # as loaded: eval, no grads
