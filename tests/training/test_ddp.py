"""DDP on CPU (gloo): `trainer.devices=2 trainer.strategy=ddp` runs two processes; their batches are disjoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ONE_STEP, TINY_CORE, TINY_DATA

# A launcher script, so Lightning can re-run the same command line for rank 1, plus a callback recording a
# fingerprint of every training batch a rank sees.
SCRIPT = """
import hashlib, json, os, sys
import lightning

class BatchRecorder(lightning.Callback):
    def __init__(self, folder: str) -> None:
        self.folder, self.seen = folder, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        session, (inputs, _) = batch
        self.seen.append([session, hashlib.sha1(inputs.numpy().tobytes()).hexdigest()])

    def on_train_end(self, trainer, pl_module):
        with open(os.path.join(self.folder, f"rank{trainer.global_rank}.json"), "w") as file:
            json.dump(self.seen, file)

if __name__ == "__main__":
    from openretina.cli.train import main
    from openretina.modules.layers.convolutions import set_conv_backend

    set_conv_backend("spatial_first")
    sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.timeout(260)
def test_ddp_two_cpu_processes_see_disjoint_batches(tmp_path: Path) -> None:
    (tmp_path / "run_train.py").write_text(SCRIPT)
    overrides = [
        f"paths.log_dir={tmp_path}",
        *[o for o in ONE_STEP if "limit_train_batches" not in o],
        "+trainer.limit_train_batches=3",
        *TINY_DATA,
        *TINY_CORE,
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "+training_callbacks.recorder._target_=run_train.BatchRecorder",
        f"+training_callbacks.recorder.folder={tmp_path}",
    ]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "run_train.py"), *overrides],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    # 2 training batches per session; each rank keeps one of every session's pair.
    assert len(rank0) == len(rank1) == 2
    assert {session for session, _ in rank0} == {session for session, _ in rank1} == {"session_0", "session_1"}
    assert not {fingerprint for _, fingerprint in rank0} & {fingerprint for _, fingerprint in rank1}
