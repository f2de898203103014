"""The command line as a user runs it: exit codes, one-line errors, files written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mcss.cli import main


def mcss(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mcss", *args], capture_output=True, text=True)


def test_synth_writes_dataset_and_preview(tmp_path: Path) -> None:
    out, png = tmp_path / "data", tmp_path / "preview.png"
    run = mcss("synth", "--preset", "tiny", "--out", str(out), "--preview", str(png))
    assert run.returncode == 0, run.stderr
    assert "wrote" in run.stderr and (out / "meta.json").is_file()
    sheet = Image.open(png)
    assert sheet.width == 4 * 128 and sheet.height > 128
    again = mcss("synth", "--preset", "tiny", "--out", str(out))
    assert again.returncode == 0 and "nothing to do" in again.stderr
    other = mcss("synth", "--preset", "tiny", "--out", str(out), "--seed", "3")
    assert other.returncode == 2 and "--overwrite" in other.stderr


def test_bad_arguments_give_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for args, message in [
        (["--preset", "huge"], "unknown preset"),
        (["--image-size", "30"], "multiple of 8"),
        (["--image-size", "abc"], "--image-size"),
        (["--cameras", "1"], "at least 2 cameras"),
        (["--motions", "some"], "--motions"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(["synth", "--out", str(tmp_path / "x"), *args])
        stderr = capsys.readouterr().err
        assert stop.value.code == 2, (args, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, stderr)
    assert not (tmp_path / "x").exists()
