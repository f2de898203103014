"""ONNX export of a trained network, for deployment without mcss or PyTorch.

The graph takes ``images`` ``(batch, 3, S, S)`` float32 RGB in [0, 1] (square person crops,
as :mod:`mcss.predict` makes them; the ImageNet normalisation is inside the graph) and returns
``embedding`` ``(batch, D)`` (L2-normalised), ``pose_canonical`` and ``pose_camera``
``(batch, 17, 3)`` (root-relative, mm) and ``rotation`` ``(batch, 3, 3)`` (body to camera):
the outputs of :func:`mcss.predict.network_outputs`. The batch axis is dynamic.

It uses PyTorch's default exporter in torch >= 2.9, ``torch.onnx.export(dynamo=True)``
(``torch.export`` capture, translated with ONNX Script); the TorchScript exporter
(``dynamo=False``) is the legacy path. How to feed the model is written into the file's
``metadata_props`` (``mcss.input``, ``mcss.outputs``, ...), readable with
``onnx.load(path).metadata_props`` or onnxruntime's ``get_modelmeta().custom_metadata_map``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from mcss.checkpoint import MODEL_FILE
from mcss.predict import OUTPUT_KEYS, LoadedModel, input_description, network_outputs, write_atomic
from mcss.skeleton import JOINT_NAMES

INPUT_NAME = "images"


class ExportError(ValueError):
    """The model cannot be exported; the message says why."""


class OnnxWrapper(nn.Module):
    """The network as a module with plain tensor outputs, in :data:`OUTPUT_KEYS` order."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = network_outputs(self.model, images)
        return tuple(out[k] for k in OUTPUT_KEYS)


def metadata(model: LoadedModel) -> dict[str, str]:
    """The ``metadata_props`` of an export: input, outputs, joints, source checkpoint."""
    from mcss.pose_index import file_sha256

    outputs = {
        "embedding": "(batch, D) L2-normalised embedding (compare with L2 or cosine)",
        "pose_canonical": "(batch, 17, 3) root-relative joints in the body frame, mm",
        "pose_camera": "(batch, 17, 3) root-relative joints in the camera frame (x right, "
                       "y down, z forward), mm",
        "rotation": "(batch, 3, 3) body-to-camera rotation: pose_camera = pose_canonical @ R.T",
    }
    return {
        "mcss.input": json.dumps({"name": INPUT_NAME, **input_description(model.image_size)}),
        "mcss.input_size_recorded": str(model.size_known).lower(),
        "mcss.outputs": json.dumps(outputs),
        "mcss.joint_names": json.dumps(list(JOINT_NAMES)),
        "mcss.checkpoint": str(model.folder),
        "mcss.checkpoint_sha256": file_sha256(model.folder / MODEL_FILE),
    }


def export_onnx(model: LoadedModel, out: Path, opset: int | None = None) -> Path:
    """Write ``out`` (one self-contained .onnx file, atomically) with a dynamic batch axis."""
    wrapper = OnnxWrapper(model.model)
    example = torch.rand(2, 3, model.image_size, model.image_size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper, (example,), dynamo=True, input_names=[INPUT_NAME],
                output_names=list(OUTPUT_KEYS), dynamic_shapes={INPUT_NAME: {0: batch}},
                opset_version=opset, external_data=False, verbose=False,
            )
    except Exception as err:  # the exporter raises many types; report them as one
        raise ExportError(f"ONNX export of {model.folder} failed: {err}") from err
    proto = program.model_proto
    for key, value in metadata(model).items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = "mcss pose network: " + ", ".join(OUTPUT_KEYS)
    onnx.checker.check_model(proto)
    return write_atomic(Path(out), lambda fh: fh.write(proto.SerializeToString()))
