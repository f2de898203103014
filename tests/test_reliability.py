"""Reliability: a killed run loses nothing, bad input explains itself and leaves nothing behind.

The converter cases of the catalogue (missing views, unequal frame counts, corrupt images and
videos, NaN labels, metres, joint counts, ``../`` paths, malicious pickles) are tested beside
their converters; ``docs/reliability.md`` lists every case with its test.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.torch import load_file

from mcss.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"
TRAIN = ["--preset", "tiny", "--set", "ckpt_every=1", "--set", "val_every=100",
         "--set", "lam=0.5", "--no-progress"]


def _mcss(args: list[str], **kwargs) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "mcss", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=300)
    return process.returncode, err


def _weights(run: Path) -> dict:
    latest = (run / "checkpoints" / "latest").read_text().strip()
    return load_file(run / "checkpoints" / latest / "model.safetensors")


def _saved_steps(run: Path) -> list[int]:
    latest = run / "checkpoints" / "latest"
    return [int(latest.read_text().split("-")[1])] if latest.is_file() else []


def test_sigkill_at_a_random_step_then_resume_is_bit_identical(tiny_dataset, tmp_path) -> None:
    steps = 8
    kill_after = int(np.random.default_rng(2026).integers(2, steps - 1))
    args = ["train", "--data", str(tiny_dataset), *TRAIN, "--set", f"steps={steps}"]
    killed = _mcss([*args, "--out", str(tmp_path / "killed")])
    deadline = time.monotonic() + 240
    while not any(s >= kill_after for s in _saved_steps(tmp_path / "killed")):
        assert killed.poll() is None and time.monotonic() < deadline, "run ended before kill"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)  # mid-step or mid-checkpoint: no chance to clean up
    assert _finish(killed)[0] == -signal.SIGKILL
    assert _saved_steps(tmp_path / "killed")[0] < steps
    code, err = _finish(_mcss([*args, "--out", str(tmp_path / "killed"), "--resume"]))
    assert code == 0, err
    code, err = _finish(_mcss([*args, "--out", str(tmp_path / "whole")]))
    assert code == 0, err
    a, b = _weights(tmp_path / "killed"), _weights(tmp_path / "whole")
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    leftovers = [p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()
                 if p.name.startswith(".tmp")]
    assert leftovers == []  # a half-written checkpoint of the killed run was swept away


def test_sigterm_saves_a_checkpoint_and_exits_130(tiny_dataset, tmp_path) -> None:
    run = tmp_path / "run"
    process = _mcss(["train", "--data", str(tiny_dataset), "--out", str(run), *TRAIN,
                     "--set", "steps=400", "--set", "ckpt_every=1000"])
    deadline = time.monotonic() + 240
    while not (run / "metrics.csv").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    code, err = _finish(process)
    assert code == 130, err
    saved = _saved_steps(run)
    assert saved and 0 < saved[0] < 400
    assert "checkpoint saved, continue with --resume" in err


# --------------------------------------------------------------------------- no unsafe loads


UNSAFE = [
    (re.compile(r"\bpickle\.loads?\("), "plain pickle.load"),
    (re.compile(r"\bcPickle\b|\bdill\b|\bjoblib\.load\("), "pickle-based loader"),
    (re.compile(r"allow_pickle\s*=\s*True"), "np.load with allow_pickle=True"),
]


def _torch_loads_without_weights_only(text: str) -> list[str]:
    calls = []
    for match in re.finditer(r"\btorch\.load\(", text):
        depth, end = 1, match.end()
        while depth and end < len(text):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        call = text[match.start():end]
        if not re.search(r"weights_only\s*=\s*True", call):
            calls.append(call)
    return calls


def test_source_has_no_unsafe_loads() -> None:
    roots = [SRC, SRC.parent / "benchmarks"]
    offenders = []
    for path in (p for root in roots for p in root.rglob("*.py")):
        text = path.read_text()
        if path.name != "safe_pickle.py":  # the restricted unpickler itself
            offenders += [f"{path}: {what}" for rx, what in UNSAFE if rx.search(text)]
        offenders += [f"{path}: {call}" for call in _torch_loads_without_weights_only(text)]
    assert offenders == []


def test_the_scan_catches_what_it_must() -> None:
    assert _torch_loads_without_weights_only("x = torch.load(f, map_location='cpu')")
    assert not _torch_loads_without_weights_only("torch.load(open(f), weights_only=True)")
    assert UNSAFE[0][0].search("obj = pickle.load(handle)")


# --------------------------------------------------------------------------- the catalogue


def _fails(args: list[str], capsys) -> str:
    """Run the CLI; it must exit 2 with exactly one ``mcss: error:`` line. Returns it."""
    with pytest.raises(SystemExit) as stop:
        main(args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("mcss: error: "), lines
    return lines[0]


def test_unknown_subject_in_labelled(tiny_dataset, tmp_path, capsys) -> None:
    line = _fails(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"),
                   "--preset", "tiny", "--set", "labelled=S99"], capsys)
    assert "'S99'" in line and str(tiny_dataset) in line and "choose among S1" in line
    assert not (tmp_path / "run").exists()


def test_checkpoint_from_another_architecture(tiny_dataset, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    main_args = ["train", "--data", str(tiny_dataset), "--out", str(run), *TRAIN,
                 "--set", "steps=1"]
    with pytest.raises(SystemExit):
        main(main_args)
    capsys.readouterr()
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    line = _fails(["train", "--data", str(tiny_dataset), "--out", str(run), "--resume",
                   "--set", "arch=resnet34", "--no-progress"], capsys)
    assert "model.safetensors" in line and "another architecture" in line
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before  # config.yaml, logs and checkpoints untouched


def test_config_with_an_unknown_key(tiny_dataset, tmp_path, capsys) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"lr": 1e-3, "lamda": 0.1}))
    line = _fails(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"),
                   "--config", str(config)], capsys)
    assert str(config) in line and "'lamda'" in line and "known:" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("setting", "named"), [("lr=-1", "lr > 0"), ("n_views=1", "n_views"),
                                                ("scale_jitter=1.5", "scale_jitter"),
                                                ("steps=ten", "steps")])
def test_out_of_range_set_value(setting, named, tiny_dataset, tmp_path, capsys) -> None:
    line = _fails(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run"),
                   "--set", setting], capsys)
    assert named in line
    assert not (tmp_path / "run").exists()


def _copy_with_meta(tiny_dataset: Path, tmp_path: Path, **changes) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(tiny_dataset, copy)
    meta = json.loads((copy / "meta.json").read_text())
    for key, value in changes.items():
        meta[key] = value
    (copy / "meta.json").write_text(json.dumps(meta))
    return copy


def test_dataset_of_an_unknown_format_version(tiny_dataset, tmp_path, capsys) -> None:
    data = _copy_with_meta(tiny_dataset, tmp_path, format_version=99)
    line = _fails(["train", "--data", str(data), "--out", str(tmp_path / "run"),
                   "--preset", "tiny"], capsys)
    assert str(data / "meta.json") in line and "version 99" in line and "convert" in line
    assert not (tmp_path / "run").exists()


def test_empty_split(tiny_dataset, tmp_path, capsys) -> None:
    meta = json.loads((tiny_dataset / "meta.json").read_text())
    data = _copy_with_meta(tiny_dataset, tmp_path,
                           splits={"train": meta["splits"]["train"], "test": []})
    run = tmp_path / "run"
    with pytest.raises(SystemExit):
        main(["train", "--data", str(data), "--out", str(run), *TRAIN, "--set", "steps=1"])
    capsys.readouterr()
    out = tmp_path / "eval"
    line = _fails(["eval", str(run), "--data", str(data), "--split", "test",
                   "--out", str(out)], capsys)
    assert str(data) in line and "'test'" in line
    assert not out.exists()


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG


def test_no_space_left_on_the_device(tmp_path) -> None:
    """The kernel refuses writes past 64 kB (RLIMIT_FSIZE), as a full disk would."""
    out = tmp_path / "data"
    code, err = _finish(_mcss(["synth", "--preset", "tiny", "--out", str(out)],
                              preexec_fn=_limit_file_size))
    errors = [line for line in err.splitlines() if line.startswith("mcss: error:")]
    assert code == 2, err
    assert len(errors) == 1 and errors[0].startswith("mcss: error: no space left"), err
    assert "images.npy" in errors[0] and "free space" in errors[0]
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # neither the dataset nor its temporary folder


def test_synth_killed_midway_leaves_nothing_a_reader_accepts(tmp_path) -> None:
    from mcss.data.format import Dataset, DatasetError

    out = tmp_path / "data"
    writer = _mcss(["synth", "--preset", "tiny", "--out", str(out)])
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".data.tmp-*")):
        assert writer.poll() is None and time.monotonic() < deadline, "synth ended too early"
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=60)
    assert not out.exists()
    with pytest.raises(DatasetError):
        Dataset(out)
    code, err = _finish(_mcss(["synth", "--preset", "tiny", "--out", str(out)]))
    assert code == 0, err
    assert len(Dataset(out)) > 0
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # the killed writer's folder too
