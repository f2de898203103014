"""Helpers of the converter tests: edit a fixture's annotation file, check a refusal, check
that converted left joints are on the body's left."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mcss.cli import main
from mcss.geometry import to_canonical
from mcss.skeleton import JOINT_NAMES

J = {name: i for i, name in enumerate(JOINT_NAMES)}


def edit_npz(path: Path, edit: Callable[[dict[str, np.ndarray]], None]) -> None:
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    edit(arrays)
    np.savez(path, **arrays)


def assert_refused(args: list[str], out: Path, capsys: pytest.CaptureFixture, *needles: str
                   ) -> None:
    """The CLI prints one `mcss: error:` line naming ``needles``, exits 2, writes nothing."""
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("mcss: error: ") and all(n in err[0] for n in needles), err[0]
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.tmp-*"))


def assert_left_is_left(joints_camera: np.ndarray) -> None:
    """In the canonical body frame (x = body's right, faces -z) the left shoulder is on the
    left and the knees bend forward; a left/right swapped pose fails both."""
    canonical = to_canonical(joints_camera)
    assert (canonical[:, J["left_shoulder"], 0] < 0).all()
    assert (canonical[:, J["right_shoulder"], 0] > 0).all()
    assert (knees_forward(canonical) < 0).all()
    mirrored = to_canonical(joints_camera * np.array([-1.0, 1.0, 1.0]))  # = left/right swapped
    assert (knees_forward(mirrored) > 0).all()


def knees_forward(canonical: np.ndarray) -> np.ndarray:
    """Mean z of the knees relative to their hip-ankle midpoints (< 0: in front)."""
    offsets = [canonical[:, J[f"{s}_knee"], 2] - (canonical[:, J[f"{s}_hip"], 2]
               + canonical[:, J[f"{s}_foot"], 2]) / 2 for s in ("left", "right")]
    return np.mean(offsets, axis=0)
