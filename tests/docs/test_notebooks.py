"""The example notebooks run from top to bottom (their last cell asserts the science) and are stored clean."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the 'notebooks' extra (nbclient)")
nbclient = pytest.importorskip("nbclient", reason="the notebook tests need the 'notebooks' extra (nbclient)")
pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel")

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300


class _ThisInterpreter(KernelSpecManager):
    """Every kernel name resolves to an IPython kernel of the interpreter running the tests.

    A "python3" kernel spec installed elsewhere on the machine could point at another environment, which would
    test whatever openretina that environment has instead of this checkout.
    """

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"openretina tests ({kernel_name})",
            language="python",
        )


def test_the_documented_notebooks_exist() -> None:
    assert {path.stem for path in NOTEBOOKS} >= {"training", "mei", "mds"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells, f"{path.name} has no code"
    dirty = [i for i, cell in enumerate(code_cells) if cell.outputs or cell.execution_count is not None]
    assert not dirty, f"{path.name}: code cells {dirty} keep outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_ends_with_a_check(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    last_code = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    assert "assert " in last_code.source, f"{path.name}: the last code cell should assert what the notebook shows"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment: downloads/caches and figures stay inside the test's directory.
    monkeypatch.setenv("OPENRETINA_CACHE_DIRECTORY", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        km=KernelManager(kernel_name="python3", kernel_spec_manager=_ThisInterpreter()),
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the failing cell and its traceback, on any error
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors
