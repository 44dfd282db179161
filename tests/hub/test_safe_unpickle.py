"""The restricted unpickler refuses code-running pickles and still reads everything a checkpoint needs."""

from __future__ import annotations

import collections
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from openretina.errors import DataFormatError
from openretina.hub import UnsafeCheckpointError, read_checkpoint
from openretina.hub.safe_unpickle import RestrictedUnpickler, safe_torch_load
from openretina.modules.layers.scaling import Bias3DLayer


class _RunsShellCommand:
    """Unpickling this object runs ``touch <marker>`` (a classic malicious checkpoint payload)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch '{self.marker}'",)


def _restricted_loads(data: bytes) -> object:
    return RestrictedUnpickler(io.BytesIO(data)).load()


def test_malicious_checkpoint_is_refused_and_its_code_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"payload": _RunsShellCommand(marker)}}, checkpoint)
    with pytest.raises(UnsafeCheckpointError) as raised:
        read_checkpoint(checkpoint)
    assert "posix.system" in str(raised.value) or "os.system" in str(raised.value)
    assert str(checkpoint) in str(raised.value)
    assert isinstance(raised.value, DataFormatError) and isinstance(raised.value, ValueError)
    assert not marker.exists()
    # Control: the file really is malicious, an unrestricted load runs the command.
    torch.load(checkpoint, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R.", "builtins.eval"),
        (b"\x80\x02c__builtin__\neval\nX\x03\x00\x00\x001+1\x85R.", "builtins.eval"),  # Python 2 spelling
        (b"\x80\x02copenretina.modules.layers.scaling\nBias3DLayer\nK\x01\x85R.", "refusing to call"),
        (b"\x80\x02ccollections\nOrderedDict\n}b.", "set the state"),  # BUILD on a class = setattr on it
        (b"(ibuiltins\nlist\n.", "INST/OBJ"),
        (b"\x80\x02copenretina.cli.openretina_main\nCommand\n)\x81.", "openretina.cli.openretina_main.Command"),
        (b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.", "posix.system"),
    ],
)
def test_forbidden_globals_and_opcodes(data: bytes, message: str) -> None:
    with pytest.raises(UnsafeCheckpointError, match=message.replace(".", r"\.")):
        _restricted_loads(data)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_checkpoint_value_types_round_trip(protocol: int) -> None:
    config = OmegaConf.create({"_target_": "x.Y", "sizes": [1, 2], "nested": {"none": None, "f": 0.5}})
    value = {
        "ordered": collections.OrderedDict(b=1, a=2),
        "default": collections.defaultdict(list, {"k": [1]}),
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "scalar": np.float64(2.5),
        "dtype": np.dtype("float32"),
        "plain": (1, 2.5, "text", b"\x00\xff", None, True, frozenset({3}), {4}),
    }
    restored = _restricted_loads(pickle.dumps({**value, "config": config}, protocol=protocol))
    assert isinstance(restored, dict)
    assert OmegaConf.to_container(restored.pop("config")) == OmegaConf.to_container(config)
    np.testing.assert_array_equal(restored.pop("array"), value.pop("array"))
    assert restored == value
    assert type(restored["default"]) is collections.defaultdict and restored["default"]["new"] == []


def test_tensors_parameters_and_modules_load(tmp_path: Path) -> None:
    module = nn.Sequential(nn.Conv3d(1, 2, 3), nn.BatchNorm3d(2), nn.ELU(), Bias3DLayer(2))
    with torch.no_grad():
        module[3].bias.fill_(0.25)
    original = {
        "tensor": torch.arange(6.0).reshape(2, 3)[:, 1:],  # a view with an offset into its storage
        "parameter": nn.Parameter(torch.ones(2)),
        "dtype": torch.float16,
        "size": torch.Size([1, 2]),
        "module": module,
    }
    path = tmp_path / "values.pt"
    torch.save(original, path)
    restored = safe_torch_load(path)
    torch.testing.assert_close(restored["tensor"], original["tensor"])
    assert isinstance(restored["parameter"], nn.Parameter)
    assert restored["dtype"] is torch.float16 and restored["size"] == torch.Size([1, 2])
    assert type(restored["module"][3]) is Bias3DLayer
    for (name, value), (_, expected) in zip(restored["module"].state_dict().items(), module.state_dict().items()):
        torch.testing.assert_close(value, expected, msg=name)
    x = torch.randn(1, 1, 4, 5, 5)
    module.eval(), restored["module"].eval()
    torch.testing.assert_close(restored["module"](x), module(x))


def test_bytes_source_and_reference_fixture(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parents[1] / "data" / "reference_fixture" / "init.ckpt"
    from_bytes = safe_torch_load(fixture.read_bytes())
    assert set(from_bytes) >= {"state_dict", "hyper_parameters", "epoch", "optimizer_states"}
    assert from_bytes["hyper_parameters"]["core"]["_target_"] == "openretina.modules.core.base_core.SimpleCoreWrapper"
