"""The command line as a user runs it: exit codes, one-line errors, files written."""

from __future__ import annotations

import json
import os
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
    marked = mcss("synth", "--preset", "tiny", "--out", str(out), "--marked-left")
    assert marked.returncode == 2 and "--overwrite" in marked.stderr  # another dataset


def test_help_lists_every_command_on_one_line() -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "mcss", "--help"], capture_output=True,
                         text=True, env=env).stdout
    panel = out[out.index("Commands"):].split("╰")[0].splitlines()[1:]
    names = [row.strip("│ ").split(" ", 1)[0] for row in panel]
    assert names == ["synth", "train", "eval", "retrieve", "predict", "index", "search",
                     "export", "reproduce", "convert"], panel


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


def test_train_eval_retrieve_end_to_end(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(tiny_dataset), "--out", str(run), "--preset", "tiny",
              "--set", "steps=2", "--set", "ckpt_every=2", "--no-progress"])
    assert stop.value.code == 0
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "latest").is_file()
    with pytest.raises(SystemExit) as stop:
        main(["eval", str(run), "--data", str(tiny_dataset)])
    captured = capsys.readouterr()
    report = captured.out
    assert stop.value.code == 0
    assert f"mcss eval {run} --checkpoint best" in " ".join(captured.err.split())
    assert "mean over actions" in report and "mean-pose predictor" in report
    assert "Left and right: agreement" in report
    result = json.loads((run / "eval-test.json").read_text())
    assert -1 <= result["monitors"]["left_right_agreement"] <= 1
    assert result["frames"] == 2 * 2 * 8 * 4  # S9, S11 x 2 actions x 8 frames x 4 cameras
    assert set(result["per_action"]) == {"dance_a", "dance_b"}
    subjects = result["per_subject"]
    assert set(subjects) == {"S9", "S11"} and "| S11 | 64 |" in report
    for metric in ("canonical_mpjpe", "pa_mpjpe"):  # frame-weighted, they give the frame mean
        weighted = sum(m[metric] * m["frames"] for m in subjects.values()) / result["frames"]
        assert weighted == pytest.approx(result["mean_over_frames"][metric], rel=1e-9)
    weighted = sum(m["mean_pose_mpjpe"] * m["frames"] for m in subjects.values())
    assert weighted / result["frames"] == pytest.approx(
        result["references"]["mean_pose_mpjpe"], rel=1e-9)
    with pytest.raises(SystemExit) as stop:
        main(["eval", str(run), "--data", str(tiny_dataset), "--checkpoint", "best"])
    assert stop.value.code == 0
    best = json.loads((run / "eval-test-best.json").read_text())
    assert Path(best["checkpoint"]) == run / "checkpoints" / "best"
    assert best["mean_over_frames"] == result["mean_over_frames"]  # one validation: same model
    for target, choice, message in [(run, "first", "latest or best"),
                                    (tmp_path, "best", "no checkpoints/best")]:
        with pytest.raises(SystemExit) as stop:
            main(["eval", str(target), "--data", str(tiny_dataset), "--checkpoint", choice])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["retrieve", f"mine={run}", "--data", str(tiny_dataset), "--out",
              str(tmp_path / "ret")])
    assert stop.value.code == 0
    ret = json.loads((tmp_path / "ret" / "results.json").read_text())
    assert set(ret) == {"mine", "random"} and (tmp_path / "ret" / "grid_mine.png").is_file()


def test_train_refuses_bad_config_and_data(tmp_path: Path, tiny_dataset: Path, capsys) -> None:
    for args, message in [
        (["--data", str(tmp_path)], "not an mcss dataset"),
        (["--data", str(tiny_dataset), "--set", "lamda=1"], "key among"),
        (["--data", str(tiny_dataset), "--set", "labelled=S9"], "not training subjects"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(["train", "--out", str(tmp_path / "r"), "--preset", "tiny", *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and len(err) == 1 and message in err[0], (args, err)
