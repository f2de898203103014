"""`mcss export --onnx`: onnxruntime gives PyTorch's outputs for any batch size, and the file
says how to feed it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mcss.cli import main
from mcss.predict import OUTPUT_KEYS, load_model, network_outputs


def run_cli(*args: object) -> int:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    return stop.value.code


def test_onnx_matches_pytorch_for_batch_1_and_3(
    tiny_checkpoint: Path, tmp_path: Path  # noqa: F811
) -> None:
    path = tmp_path / "model.onnx"
    assert run_cli("export", tiny_checkpoint, "--onnx", path) == 0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (image_input,) = session.get_inputs()
    assert image_input.name == "images" and image_input.shape[1:] == [3, 32, 32]
    assert isinstance(image_input.shape[0], str)  # the dynamic batch axis
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_KEYS)
    described = json.loads(session.get_modelmeta().custom_metadata_map["mcss.input"])
    assert described["shape"] == ["batch", 3, 32, 32] and described["range"] == [0.0, 1.0]
    assert described["colour"] == "RGB" and described["normalisation"]["applied"]
    model = load_model(tiny_checkpoint).model.eval()
    for batch in (1, 3):
        images = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = network_outputs(model, images)
        got = dict(zip(OUTPUT_KEYS, session.run(None, {"images": images.numpy()}), strict=True))
        for key in ("embedding", "rotation"):
            np.testing.assert_allclose(got[key], expected[key].numpy(), rtol=0, atol=1e-4)
        for key in ("pose_canonical", "pose_camera"):  # mm; float32 spacing at 700 is 6e-5
            np.testing.assert_allclose(got[key], expected[key].numpy(), rtol=1e-4, atol=1e-4)


def test_export_of_a_missing_checkpoint_fails_in_one_line(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "no-run"
    assert run_cli("export", missing, "--onnx", tmp_path / "m.onnx") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0]
    assert not (tmp_path / "m.onnx").exists()
