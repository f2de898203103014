"""Helpers of the converter tests: edit a fixture's annotation file, check a refusal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mcss.cli import main


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
