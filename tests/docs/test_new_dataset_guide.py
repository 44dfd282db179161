"""docs/new_dataset.md works as written: its files are written, its Python runs and its commands train.

Blocks are taken in page order. A block whose first line is ``# file: <path>`` is written to that path (the
loader module, the configs, the project's test); other ``python`` blocks are executed in one namespace;
``bash`` blocks are ``openretina train`` commands, run in-process through the CLI entry point.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from openretina.cli import train as train_cli
from openretina.modules.layers.convolutions import conv_backend

DOC = Path(__file__).resolve().parents[2] / "docs" / "new_dataset.md"
FILE_MARKER = re.compile(r"^# file: (\S+)\n")
# The page's commands, as typed in a shell; the part after the prefix is what the CLI entry point receives.
COMMAND_PREFIXES = ("python -m openretina train", "openretina train")


@dataclass(frozen=True)
class Block:
    language: str
    code: str

    @property
    def target(self) -> str | None:
        """The path this block is meant to be saved as, if it names one."""
        match = FILE_MARKER.match(self.code)
        return match.group(1) if match else None


def page_blocks() -> list[Block]:
    return [
        Block(language, code)
        for language, code in re.findall(r"```(python|yaml|bash)\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    ]


def train_arguments(command: str) -> list[str]:
    for prefix in COMMAND_PREFIXES:
        if command.startswith(prefix + " "):
            return shlex.split(command[len(prefix) :])
    raise AssertionError(f"unexpected command on the page: {command!r}")


def test_page_describes_the_whole_project() -> None:
    blocks = page_blocks()
    targets = [block.target for block in blocks if block.target]
    assert targets == [
        "my_lab_data.py",
        "my_configs/data_io/my_lab.yaml",
        "my_configs/dataloader/my_lab.yaml",
        "my_configs/my_lab_core_readout.yaml",
        "tests/test_my_lab.py",
    ]
    assert all(block.target for block in blocks if block.language == "yaml")
    commands = [block.code.strip() for block in blocks if block.language == "bash"]
    assert len(commands) == 2 and all(train_arguments(command) for command in commands)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty `my_project/` as the working directory, importable like `python -m` makes it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("OPENRETINA_CACHE_DIRECTORY", str(tmp_path / "cache"))
    with conv_backend("spatial_first"):  # skips per-shape autotuning; these runs are tiny
        yield tmp_path
    sys.modules.pop("my_lab_data", None)


def run_project_test(path: Path, tmp_dir: Path) -> None:
    spec = importlib.util.spec_from_file_location("test_my_lab_from_guide", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.test_my_lab_config_trains_one_step(tmp_dir)


@pytest.mark.slow
def test_guide_runs_from_raw_files_to_trained_models(project: Path) -> None:
    namespace: dict[str, object] = {}
    blocks = page_blocks()
    for block in blocks:
        if block.target:
            path = project / block.target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.code)
        elif block.language == "python":
            exec(compile(block.code, str(DOC), "exec"), namespace)
        else:
            assert train_cli.main(train_arguments(block.code.strip())) == 0, block.code

    # Section 2-3: the raw files and what the loaders make of them (the values the page prints).
    assert sorted(p.name for p in (project / "raw_data").iterdir()) == ["retina_01.npz", "retina_02.npz"]
    info = namespace["info"]
    assert isinstance(info, dict)
    assert info["n_neurons_dict"] == {"retina_01": 10, "retina_02": 10} and tuple(info["input_shape"]) == (1, 16, 16)
    batch = namespace["batch"]
    assert tuple(batch.inputs.shape) == (16, 1, 50, 16, 16) and tuple(batch.targets.shape) == (16, 50, 10)  # type: ignore[attr-defined]
    movies, responses, retina = namespace["movies"], namespace["responses"], namespace["retina"]
    # The loaders invert the export exactly: the responses are the synthetic retina's, frame for frame...
    original = retina.responses["session_1"]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(responses["retina_02"].train, original.train)  # type: ignore[index]
    np.testing.assert_array_equal(
        responses["retina_02"].test_by_trial_dict["test"],  # type: ignore[index]
        original.test_by_trial_dict["test"],
    )
    # ...and the movies are the 8-bit frames z-scored with one mean and std shared by both sessions.
    train = movies["retina_01"].train  # type: ignore[index]
    assert movies["retina_01"].norm_mean == movies["retina_02"].norm_mean  # type: ignore[index]
    assert abs(float(np.mean(train))) < 1e-3 and abs(float(np.std(train)) - 1.0) < 1e-3
    # The HDF5 shortcut reads back the same responses.
    h5_movies, h5_responses = namespace["h5_movies"], namespace["h5_responses"]
    assert tuple(h5_movies["retina_01"].train.shape) == (1, 3000, 16, 16)  # type: ignore[index]
    np.testing.assert_allclose(h5_responses["retina_01"].train, responses["retina_01"].train)  # type: ignore[index]
    assert tuple(h5_responses["retina_01"].test_by_trial_dict["test"].shape) == (4, 10, 150)  # type: ignore[index]

    # Both commands trained and evaluated a model (relative log dir `runs`, as on the page).
    runs = project / "runs" / "openretina_assets" / "runs"
    for exp_name in ("my_lab_core_readout", "hdf5_core_readout"):
        (run_dir,) = (runs / exp_name).iterdir()
        assert list((run_dir / "checkpoints").glob("*.ckpt")), exp_name
        summaries = list((run_dir / "evaluation").glob("*_summary.json"))
        assert summaries, exp_name

    # Section 5: the project's own test passes.
    run_project_test(project / "tests" / "test_my_lab.py", project / "test_output")
    assert list((project / "test_output" / "evaluation").glob("*_summary.json"))
