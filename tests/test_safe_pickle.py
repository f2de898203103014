"""The restricted unpickler loads real calibration pickles and refuses anything that runs code."""

from __future__ import annotations

import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import fixture_path as _fixture
from mcss.safe_pickle import UnsafePickleError, restricted_load, restricted_loads


def test_h36m_cameras_pickle_loads() -> None:
    cams = restricted_load(_fixture("h36m/cameras.pkl"))
    assert isinstance(cams, dict)
    assert len(cams) == 44  # 11 subjects x 4 cameras
    entry = cams[("S1", "54138969")]
    assert entry["R"].shape == (3, 3) and entry["R"].dtype == np.float64
    assert entry["T"].shape == (3, 1)
    assert entry["id"] == "54138969" and entry["w"] == 1000


@pytest.mark.parametrize(("name", "count"), [("cameras_train.pkl", 128), ("cameras_test.pkl", 6)])
def test_mpi_inf_3dhp_cameras_pickles_load(name: str, count: int) -> None:
    cams = restricted_load(_fixture(f"mpi_inf_3dhp/{name}"))
    assert isinstance(cams, dict) and len(cams) == count
    for entry in cams.values():
        assert entry["f"].shape == (2, 1) and entry["c"].shape == (2, 1)


class _Payload:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.sentinel}",))


def test_code_execution_payload_is_refused(tmp_path: Path) -> None:
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "cameras.pkl"
    path.write_bytes(pickle.dumps({"R": np.eye(3), "evil": _Payload(sentinel)}))
    with pytest.raises(UnsafePickleError) as info:
        restricted_load(path)
    message = str(info.value)
    assert str(path) in message
    assert "system" in message
    assert "JSON" in message and "NPZ" in message
    assert isinstance(info.value, ValueError)
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("__builtin__", "exec"),
        ("subprocess", "Popen"),
        ("numpy", "load"),
        ("numpy.core.multiarray", "fromstring"),
        ("mcss_never_imported_module", "anything"),
    ],
)
def test_other_globals_are_refused_without_importing(module: str, name: str) -> None:
    data = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."
    with pytest.raises(UnsafePickleError, match=name):
        restricted_loads(data, source="crafted.pkl")
    assert "mcss_never_imported_module" not in sys.modules


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_and_plain_data_round_trip(protocol: int) -> None:
    obj = {
        ("S1", "54138969"): {"R": np.arange(9.0).reshape(3, 3), "w": 1000, "name": "camera1"},
        "scalars": [np.float64(1.5), np.int32(-3), np.float32(2.25), 1j, None, True],
        "arrays": (np.zeros((2, 1), np.float32), np.array(["a", "bc"]), np.arange(4).T),
        "bytes": b"\x00\xff",
        "set": {1, 2},
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    }
    back = restricted_loads(pickle.dumps(obj, protocol=protocol))
    assert back.keys() == obj.keys()
    np.testing.assert_array_equal(back[("S1", "54138969")]["R"], obj[("S1", "54138969")]["R"])
    assert back["scalars"] == obj["scalars"]
    assert type(back["scalars"][1]) is np.int32
    for got, want in zip(back["arrays"], obj["arrays"], strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert back["bytes"] == obj["bytes"] and back["set"] == obj["set"]
    np.testing.assert_array_equal(back["fortran"], obj["fortran"])


def _py2_short_str(text: bytes) -> bytes:
    return b"U" + bytes([len(text)]) + text  # SHORT_BINSTRING: a Python 2 ``str``


def test_python2_numpy_pickle_loads() -> None:
    """A protocol-2 pickle as Python 2 NumPy writes it: array data stored as a ``str``."""
    values = np.array([1.0, -2.5, 3.25])
    dtype = (
        b"cnumpy\ndtype\n" + _py2_short_str(b"f8") + b"K\x00K\x01\x87R"
        b"(K\x03" + _py2_short_str(b"<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
        + _py2_short_str(b"b")
        + b"\x87R(K\x01K\x03\x85"
        + dtype
        + b"\x89"
        + _py2_short_str(struct.pack("<3d", *values))
        + b"tb"
    )
    data = (
        b"\x80\x02}("
        + _py2_short_str(b"name")
        + _py2_short_str(b"cam\xe9")
        + (_py2_short_str(b"f") + array + b"u.")
    )
    loaded = restricted_loads(data)
    assert loaded["name"] == "cam\u00e9"
    np.testing.assert_array_equal(loaded["f"], values)
