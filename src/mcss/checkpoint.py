"""Atomic, pickle-free training checkpoints that resume bit-for-bit.

Layout (one folder per saved step, see ``DESIGN.md`` section 5)::

    run_dir/checkpoints/
        latest                      # text: the newest folder's name, e.g. "step-00000300"
        best/                       # the model at its best validation so far (model,
                                    # rng and state.json only; see save_best)
        step-00000300/
            model.safetensors       # model.state_dict() (parameters and buffers)
            teacher.safetensors     # the mean teacher's state dict (runs with ``teacher``)
            optimizer.safetensors   # optimizer tensors: "state.{param_id}.{key}" (if optimizer)
            scheduler.safetensors   # only if the scheduler state holds tensors (rare)
            rng.safetensors         # "torch.cpu" (uint8) and "torch.cuda.{i}" RNG states
            state.json              # step, extra, optimizer/scheduler non-tensor state,
                                    # Python ``random`` and NumPy global RNG states

A step folder is built under a hidden temporary name in ``checkpoints/``, every file is
fsynced, and only then is it renamed into place with ``os.replace``; ``latest`` is updated
the same way afterwards. A crash at any point leaves the previous checkpoint intact and
``latest`` pointing at a complete folder. Tensors are read back with
``safetensors.torch.load_file`` only (never ``torch.load`` or pickle), so a checkpoint from
an untrusted source cannot run code.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

__all__ = [
    "CheckpointError",
    "FORMAT_VERSION",
    "best_checkpoint",
    "latest_checkpoint",
    "load_checkpoint",
    "save_best",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest"
BEST_DIR = "best"
STATE_FILE = "state.json"
MODEL_FILE = "model.safetensors"
TEACHER_FILE = "teacher.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
SCHEDULER_FILE = "scheduler.safetensors"
RNG_FILE = "rng.safetensors"
_STEP_RE = re.compile(r"^step-(\d{8,})$")
_TMP_PREFIX = ".tmp-"
_MAX_LISTED = 5

# JSON markers for values JSON cannot hold natively (see _encode / _decode).
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"
_MARKERS = frozenset({_TENSOR, _TUPLE, _ITEMS})


class CheckpointError(ValueError):
    """A checkpoint cannot be written or resumed; the message names the file and the fix."""


# --------------------------------------------------------------------------- public API


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: Optimizer | None = None,
    scheduler: LRScheduler | None = None,
    extra: dict[str, Any] | None = None,
    keep_last: int | None = 3,
    teacher: nn.Module | None = None,
) -> Path:
    """Write ``run_dir/checkpoints/step-{step:08d}/`` atomically and point ``latest`` at it.

    ``extra`` must be JSON-able (config, metrics...). After the new folder is in place, older
    folders (lower step) beyond the newest ``keep_last`` are deleted; ``None`` keeps all.
    Returns the step folder.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last must be >= 1 or None (keep all), got {keep_last}")
    ckpt_dir = Path(run_dir) / CHECKPOINTS_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(ckpt_dir)
    name = _step_name(step)
    final = _write_folder(ckpt_dir / name, step, model, optimizer, scheduler, extra or {},
                          teacher)
    _write_text_atomic(ckpt_dir / LATEST_FILE, name + "\n")
    if keep_last is not None:
        _prune(ckpt_dir, step, keep_last)
    return final


def save_best(run_dir: Path, step: int, model: nn.Module, extra: dict[str, Any]) -> Path:
    """Replace ``run_dir/checkpoints/best/`` atomically with the model alone (no optimizer:
    it is for evaluation, not resume). ``extra`` should name the metric it was chosen by."""
    ckpt_dir = Path(run_dir) / CHECKPOINTS_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    return _write_folder(ckpt_dir / BEST_DIR, step, model, None, None, extra, None)


def best_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The run's ``best`` folder and its ``extra``, or None when it has none yet."""
    folder = _checkpoints_dir(Path(run_dir)) / BEST_DIR
    if not (folder / STATE_FILE).is_file():
        return None
    return folder, _read_state(folder).get("extra", {})


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete step folder of a run (or of its ``checkpoints`` dir), else None.

    Follows ``checkpoints/latest``; if that file is missing or names a folder that is gone,
    falls back to the highest-numbered step folder holding a ``state.json``.
    """
    ckpt_dir = _checkpoints_dir(Path(run_dir))
    if not ckpt_dir.is_dir():
        return None
    latest = ckpt_dir / LATEST_FILE
    if latest.is_file():
        name = latest.read_text(encoding="utf-8").strip()
        target = ckpt_dir / name
        if _STEP_RE.match(name) and (target / STATE_FILE).is_file():
            return target
        log.warning("%s names %s, which is missing; using the newest step folder", latest, target)
    folders = [p for _, p in _step_folders(ckpt_dir) if (p / STATE_FILE).is_file()]
    return folders[-1] if folders else None


def checkpoint_extra(path: Path) -> tuple[Path, dict[str, Any]]:
    """The step folder ``path`` resolves to and the ``extra`` dict saved with it (config,
    metrics), without loading any tensor."""
    folder = _resolve(Path(path))
    return folder, _read_state(folder).get("extra", {})


def checkpoint_step(path: Path) -> int:
    """The training step of a checkpoint: a step folder, or a run's latest."""
    return int(_read_state(_resolve(Path(path)))["step"])


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: Optimizer | None = None,
    scheduler: LRScheduler | None = None,
    restore_rng: bool = True,
    teacher: nn.Module | None = None,
) -> dict[str, Any]:
    """Restore model (and optionally optimizer, scheduler, RNG states, the mean teacher) from a
    checkpoint.

    ``path`` may be a run dir, its ``checkpoints`` dir or one step folder. Everything is
    read and checked before anything is modified, so a bad checkpoint leaves the model as
    it was. Returns ``{"step": int, "extra": dict, "path": Path}``.
    """
    folder = _resolve(Path(path))
    state = _read_state(folder)
    model_tensors = _load_tensors(folder / MODEL_FILE)
    target = _unwrap(model)
    _check_model(folder / MODEL_FILE, target, model_tensors)
    opt_state = _prepare_optimizer(folder, state, optimizer) if optimizer is not None else None
    sched_state = (
        _decode_from_file(folder, state, "scheduler", SCHEDULER_FILE)
        if scheduler is not None
        else None
    )
    rng_tensors = _load_tensors(folder / RNG_FILE) if restore_rng else None
    teacher_tensors = _teacher_tensors(folder, teacher) if teacher is not None else None

    target.load_state_dict(model_tensors, strict=True)
    if teacher_tensors is not None:
        teacher.load_state_dict(teacher_tensors, strict=True)
    if optimizer is not None:
        optimizer.load_state_dict(opt_state)
    if scheduler is not None:
        scheduler.load_state_dict(sched_state)
    if rng_tensors is not None:
        _set_rng(rng_tensors, state["rng"])
    return {"step": int(state["step"]), "extra": state.get("extra", {}), "path": folder}


# --------------------------------------------------------------------------- writing


def _write_folder(
    final: Path,
    step: int,
    model: nn.Module,
    optimizer: Optimizer | None,
    scheduler: LRScheduler | None,
    extra: dict[str, Any],
    teacher: nn.Module | None,
) -> Path:
    """Build one checkpoint folder under a temporary name beside ``final``, fsync it, and
    only then swap it in: a crash leaves the previous ``final`` whole."""
    with _temp_dir(final.parent, final.name) as tmp:
        _write_contents(tmp, step, model, optimizer, scheduler, extra, teacher)
        _fsync_dir(tmp)
        _replace_dir(tmp, final)
    _fsync_dir(final.parent)
    return final


def _write_contents(
    folder: Path,
    step: int,
    model: nn.Module,
    optimizer: Optimizer | None,
    scheduler: LRScheduler | None,
    extra: dict[str, Any],
    teacher: nn.Module | None,
) -> None:
    """Write every file of one checkpoint into ``folder`` (state.json last)."""
    _save_tensors(_model_tensors(_unwrap(model)), folder / MODEL_FILE)
    if teacher is not None:
        _save_tensors(_model_tensors(teacher), folder / TEACHER_FILE)
    state: dict[str, Any] = {"format_version": FORMAT_VERSION, "step": int(step)}
    state["optimizer"] = _encode_to_file(optimizer, folder / OPTIMIZER_FILE)
    state["scheduler"] = _encode_to_file(scheduler, folder / SCHEDULER_FILE)
    rng_tensors, state["rng"] = _get_rng()
    _save_tensors(rng_tensors, folder / RNG_FILE)
    state["extra"] = _json_extra(extra)
    _write_bytes(folder / STATE_FILE, json.dumps(state, indent=1).encode("utf-8"))


def _model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as independent contiguous CPU tensors (safetensors refuses shared ones)."""
    out = {}
    for key, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"model state entry {key!r} is a {type(value).__name__}, not a tensor; "
                "only tensors can be stored in model.safetensors"
            )
        out[key] = _detached_copy(value)
    return out


def _encode_to_file(obj: Optimizer | LRScheduler | None, path: Path) -> Any:
    """Split ``obj.state_dict()`` into tensors (saved at ``path`` if any) and JSON."""
    if obj is None:
        return None
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(obj.state_dict(), tensors, "")
    if tensors:
        _save_tensors(tensors, path)
    return encoded


def _encode(value: Any, tensors: dict[str, torch.Tensor], key: str) -> Any:
    """JSON-able form of ``value``; tensors go to ``tensors`` under dotted ``key`` paths."""
    if isinstance(value, torch.Tensor):
        name = key or "value"
        while name in tensors:  # keys containing dots could collide; keep both
            name += "_"
        tensors[name] = _detached_copy(value)
        return {_TENSOR: name}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not _MARKERS & value.keys():
            return {k: _encode(v, tensors, _join(key, k)) for k, v in value.items()}
        items = [[_encode(k, {}, ""), _encode(v, tensors, _join(key, k))] for k, v in value.items()]
        return {_ITEMS: items}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, tensors, _join(key, i)) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, tensors, _join(key, i)) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise CheckpointError(
        f"cannot store {type(value).__name__} at {key!r} in state.json; "
        "optimizer and scheduler state may only hold tensors, numbers, strings and containers"
    )


def _join(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _detached_copy(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", copy=True).contiguous()


def _json_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """Check ``extra`` is JSON-able now (numpy scalars/arrays are converted), not at load."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic | np.ndarray):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON-able")

    try:
        return json.loads(json.dumps(extra, default=default))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint extra must be JSON-able ({exc}); convert it to numbers, strings, "
            "lists and dicts first"
        ) from exc


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file(tensors, str(path))
    _fsync_file(path)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by a fully written file (tmp file in the same dir + os.replace)."""
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX + path.name + "-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@contextmanager
def _temp_dir(parent: Path, name: str) -> Iterator[Path]:
    """A hidden scratch folder in ``parent``, removed on exit if it was not renamed away."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{name}-", dir=parent))
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _replace_dir(src: Path, dst: Path) -> None:
    """Move folder ``src`` to ``dst``; an existing ``dst`` (step saved again) is swapped out."""
    if not dst.exists():
        os.replace(src, dst)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}old-{dst.name}-", dir=dst.parent))
    os.replace(dst, old / dst.name)
    try:
        os.replace(src, dst)
    except BaseException:
        os.replace(old / dst.name, dst)  # put the previous copy back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Persist a folder's entries (renames); a no-op where directories cannot be opened."""
    if os.name != "posix":
        return
    _fsync_file(path)


def _remove_stale_temps(ckpt_dir: Path) -> None:
    """Delete scratch entries left by a process killed mid-save (finally never ran)."""
    for entry in ckpt_dir.glob(_TMP_PREFIX + "*"):
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _prune(ckpt_dir: Path, step: int, keep_last: int) -> None:
    """Keep the newest ``keep_last`` folders up to ``step``; later-step folders are untouched."""
    older = [p for s, p in _step_folders(ckpt_dir) if s <= step]
    for folder in older[:-keep_last]:
        shutil.rmtree(folder, ignore_errors=True)


def _checkpoints_dir(path: Path) -> Path:
    """``path/checkpoints`` for a run dir; ``path`` itself when it already is that folder."""
    if (path / CHECKPOINTS_DIR).is_dir():
        return path / CHECKPOINTS_DIR
    if path.name == CHECKPOINTS_DIR or (path / LATEST_FILE).is_file():
        return path
    return path / CHECKPOINTS_DIR


def _step_folders(ckpt_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for entry in ckpt_dir.iterdir():
        match = _STEP_RE.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def _step_name(step: int) -> str:
    return f"step-{step:08d}"


# --------------------------------------------------------------------------- RNG


def _get_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Torch RNG states as tensors; Python ``random`` and NumPy global states as JSON."""
    tensors = {"torch.cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch.cuda.{i}"] = s
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 (the global state user code uses)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()
    return tensors, {"python": [version, list(internal), gauss], "numpy": np_state}


def _set_rng(tensors: dict[str, torch.Tensor], states: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch.cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch.cuda.")]
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning(
                "checkpoint has %d CUDA RNG states but %d GPUs are visible; not restored",
                len(cuda),
                torch.cuda.device_count(),
            )
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = dict(states["numpy"])
    np_state["state"] = dict(np_state["state"], key=np.asarray(np_state["state"]["key"], np.uint32))
    np.random.set_state(np_state)  # noqa: NPY002


# --------------------------------------------------------------------------- reading


def _resolve(path: Path) -> Path:
    """Step folder for a run dir, a checkpoints dir or a step folder."""
    if not path.exists():
        raise CheckpointError(f"nothing to resume: {path} does not exist; check the run path")
    if (path / STATE_FILE).is_file():
        return path
    if _STEP_RE.match(path.name):
        raise CheckpointError(
            f"{path / STATE_FILE} is missing: the checkpoint folder is incomplete; "
            "delete it and resume from an earlier step folder"
        )
    folder = latest_checkpoint(path)
    if folder is None:
        raise CheckpointError(
            f"nothing to resume in {path}: no {CHECKPOINTS_DIR}/{LATEST_FILE} or step-* folder; "
            "start a fresh run or pass a run dir / step folder that has checkpoints"
        )
    return folder


def _read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path} is missing; resume from another step folder") from exc
    except ValueError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the file is corrupt") from exc
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}; this mcss reads up to {FORMAT_VERSION} "
            "(upgrade mcss)"
        )
    return state


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(
            f"{path} is missing: the checkpoint is incomplete; restore the file or resume from "
            "another step folder"
        )
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is unreadable or truncated ({exc})") from exc


def _check_model(path: Path, model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Raise if the checkpoint's keys or shapes differ from the model's."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    problems = [
        f"{k} is {found[k]} in the checkpoint but {shape} in the model"
        for k, shape in expected.items()
        if k in found and found[k] != shape
    ]
    problems += [f"{k} not in checkpoint" for k in expected if k not in found]
    problems += [f"{k} not in model" for k in found if k not in expected]
    if problems:
        listed = "; ".join(problems[:_MAX_LISTED])
        more = f" (+{len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
        raise CheckpointError(
            f"{path} does not fit this model ({len(problems)} mismatched keys: {listed}{more}); "
            "it is a checkpoint from another architecture: build the model with the config "
            "the checkpoint was trained with, or start a fresh run"
        )


def _teacher_tensors(folder: Path, teacher: nn.Module) -> dict[str, torch.Tensor]:
    """The mean teacher's tensors, checked against ``teacher``."""
    path = folder / TEACHER_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{folder} holds no mean teacher: its run trained without one (teacher = 0); "
            "resume it with the config it was trained with (RUN/config.yaml)"
        )
    tensors = _load_tensors(path)
    _check_model(path, teacher, tensors)
    return tensors


def _prepare_optimizer(folder: Path, state: dict[str, Any], optimizer: Optimizer) -> Any:
    """Decoded optimizer state dict, checked against ``optimizer``'s parameter groups."""
    sd = _decode_from_file(folder, state, "optimizer", OPTIMIZER_FILE)
    saved = [len(g["params"]) for g in sd["param_groups"]]
    current = [len(g["params"]) for g in optimizer.param_groups]
    if saved != current:
        raise CheckpointError(
            f"{folder / STATE_FILE}: optimizer parameter groups differ (checkpoint sizes {saved}, "
            f"optimizer {current}); build the optimizer over the same parameters as when saved"
        )
    return sd


def _decode_from_file(folder: Path, state: dict[str, Any], part: str, filename: str) -> Any:
    encoded = state.get(part)
    if encoded is None:
        raise CheckpointError(
            f"{folder / STATE_FILE} holds no {part} state (saved with {part}=None); "
            f"pass {part}=None to load the rest"
        )
    tensors = _load_tensors(folder / filename) if _has_tensors(encoded) else {}
    return _decode(encoded, tensors, folder / filename)


def _has_tensors(value: Any) -> bool:
    if isinstance(value, dict):
        return _TENSOR in value or any(_has_tensors(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_tensors(v) for v in value)
    return False


def _decode(value: Any, tensors: dict[str, torch.Tensor], path: Path) -> Any:
    """Inverse of :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(v, tensors, path) for v in value]
    if not isinstance(value, dict):
        return value
    if _TENSOR in value:
        name = value[_TENSOR]
        if name not in tensors:
            raise CheckpointError(f"{path} lacks tensor {name!r} named in state.json; corrupt")
        return tensors[name]
    if _TUPLE in value:
        return tuple(_decode(v, tensors, path) for v in value[_TUPLE])
    if _ITEMS in value:
        return {_decode(k, {}, path): _decode(v, tensors, path) for k, v in value[_ITEMS]}
    return {k: _decode(v, tensors, path) for k, v in value.items()}


def _unwrap(model: nn.Module) -> nn.Module:
    """The module whose keys are saved: strips DataParallel/DDP and torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model
