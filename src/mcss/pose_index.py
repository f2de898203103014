"""Pose search: a FAISS index over the embeddings of a dataset's crops, and queries on it.

An index is a folder, written under a temporary name and renamed into place::

    INDEX/index.faiss   the FAISS index (FAISS's own binary format, no pickle)
    INDEX/meta.json     kind and parameters, the checkpoint that made the embeddings
                        (folder and SHA-256 of its model.safetensors), the dataset (folder,
                        crop size, frame count), the network's input description
    INDEX/rows.npz      one entry per vector: dataset row, subject, action, sequence, camera
                        name, frame, time, labelled flag and 3D pose (camera frame, mm,
                        root-relative; NaN unless labelled); read with allow_pickle=False

Embeddings are L2-normalised (the metric loss compares them so) and searched by L2
distance; reported distances are Euclidean, in [0, 2]. Kinds: ``flat`` (exact), ``ivf``
(inverted lists: ``nlist`` k-means cells, ``nprobe`` of them searched per query) and
``hnsw`` (a navigable small-world graph: ``M`` links per vector, ``efSearch`` candidates).
A query must be embedded by the same network: the index refuses another checkpoint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from rich.table import Table

from mcss.checkpoint import MODEL_FILE
from mcss.data.format import Dataset
from mcss.metrics import pa_mpjpe
from mcss.predict import (
    LoadedModel,
    PredictError,
    centre_box,
    crop,
    input_description,
    read_image,
    run_network,
    square_from_xywh,
)
from mcss.skeleton import JOINT_NAMES

FORMAT_NAME = "mcss-pose-index"
FORMAT_VERSION = 1
KINDS = ("flat", "ivf", "hnsw")
INDEX_FILE, META_FILE, ROWS_FILE = "index.faiss", "meta.json", "rows.npz"
MIN_POINTS_PER_LIST = 39  # FAISS's k-means asks for at least 39 training points per cell


class PoseIndexError(ValueError):
    """A pose index cannot be built, read or queried; the message names the file and fix."""


@dataclass(frozen=True)
class IndexParams:
    """FAISS index choice; ``None`` picks a default from the number of vectors."""

    kind: str = "flat"
    nlist: int | None = None  # IVF: cells (default about 4 sqrt(N))
    nprobe: int | None = None  # IVF: cells searched per query (default nlist / 8)
    hnsw_m: int = 32  # HNSW: links per vector
    ef_construction: int = 40  # HNSW: candidates while building
    ef_search: int = 64  # HNSW: candidates while searching

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PoseIndexError(f"index kind must be one of {', '.join(KINDS)}, not "
                                 f"{self.kind!r}")


def default_nlist(n: int) -> int:
    """About ``4 sqrt(n)`` IVF cells, with enough training points for each."""
    return max(1, min(round(4 * np.sqrt(n)), n // MIN_POINTS_PER_LIST))


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as contiguous float32 (what FAISS takes)."""
    x = np.asarray(x, dtype=np.float32)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))


def build_faiss_index(x: np.ndarray, params: IndexParams) -> tuple[faiss.Index, dict[str, Any]]:
    """A FAISS L2 index of the rows of ``x`` ``(N, D)``, and its resolved parameters."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    resolved: dict[str, Any] = {"kind": params.kind}
    if params.kind == "flat":
        index = faiss.IndexFlatL2(d)
    elif params.kind == "ivf":
        nlist = params.nlist or default_nlist(n)
        if nlist > n:
            raise PoseIndexError(f"--nlist {nlist} is more than the {n} vectors to index")
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
        index.train(x)
        resolved |= {"nlist": nlist, "nprobe": params.nprobe or max(1, nlist // 8)}
    else:
        index = faiss.IndexHNSWFlat(d, params.hnsw_m)
        index.hnsw.efConstruction = params.ef_construction
        resolved |= {"hnsw_m": params.hnsw_m, "ef_construction": params.ef_construction,
                     "ef_search": params.ef_search}
    index.add(x)
    configure_search(index, resolved)
    return index, resolved


def configure_search(index: faiss.Index, params: dict[str, Any]) -> None:
    """Apply the search-time parameters (IVF ``nprobe``, HNSW ``ef_search``)."""
    if params["kind"] == "ivf":
        index.nprobe = int(params["nprobe"])
    elif params["kind"] == "hnsw":
        index.hnsw.efSearch = int(params["ef_search"])


def search_index(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``k`` rows ``(Q, k)`` of each query and their Euclidean distances (``-1`` and
    NaN where the index has fewer results)."""
    squared, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    distances = np.sqrt(np.clip(squared, 0.0, None))
    return np.where(ids >= 0, distances, np.nan), ids


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the index


@dataclass
class PoseIndex:
    """A FAISS index with the metadata of every vector."""

    index: faiss.Index
    meta: dict[str, Any]
    rows: dict[str, np.ndarray]
    folder: Path | None = None

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def image_size(self) -> int:
        return int(self.meta["dataset"]["image_size"])

    def search(self, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (into :attr:`rows`) and distances of the ``k`` nearest entries."""
        return search_index(self.index, normalise(embeddings), k)

    def set_search(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Override the search-time parameters (a higher ``nprobe`` or ``ef_search`` finds
        more of the exact neighbours, slower)."""
        params = self.meta["params"]
        if nprobe is not None:
            if params["kind"] != "ivf" or not 1 <= nprobe <= params["nlist"]:
                raise PoseIndexError(f"--nprobe needs an ivf index and 1 <= nprobe <= nlist "
                                     f"({params.get('nlist')}); this index is {params['kind']}")
            params["nprobe"] = nprobe
        if ef_search is not None:
            if params["kind"] != "hnsw" or ef_search < 1:
                raise PoseIndexError(f"--ef-search needs an hnsw index and a value >= 1; this "
                                     f"index is {params['kind']}")
            params["ef_search"] = ef_search
        configure_search(self.index, params)

    def load_model(self, checkpoint: Path | None = None) -> LoadedModel:
        """The network that made the index (``checkpoint``, or the one the index records),
        checked against the recorded model hash."""
        from mcss.predict import load_model

        recorded = Path(self.meta["checkpoint"]["path"])
        if checkpoint is None and not recorded.exists():
            raise PoseIndexError(f"{self.folder}: the checkpoint that built it, {recorded}, is "
                                 "gone; pass a copy of it with --checkpoint")
        model = load_model(checkpoint or recorded, self.image_size)
        self.check_checkpoint(model.folder)
        return model

    def check_checkpoint(self, folder: Path) -> None:
        """Refuse a checkpoint other than the one whose embeddings are indexed."""
        recorded = self.meta["checkpoint"]
        digest = file_sha256(Path(folder) / MODEL_FILE)
        if digest != recorded["sha256"]:
            raise PoseIndexError(
                f"checkpoint {folder} (model sha256 {digest[:12]}) is not the one that built "
                f"index {self.folder} ({recorded['path']}, sha256 {recorded['sha256'][:12]}); "
                "pass that checkpoint with --checkpoint, or rebuild the index with `mcss index`")


def embed_dataset(
    model: LoadedModel, ds: Dataset, rows: np.ndarray, batch_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Normalised embeddings ``(len(rows), D)`` of dataset crops, in batches."""
    parts = []
    for lo in range(0, len(rows), batch_size):
        parts.append(run_network(model.model, np.asarray(ds.images[rows[lo:lo + batch_size]]))
                     ["embedding"])
        if on_progress is not None:
            on_progress(min(lo + batch_size, len(rows)), len(rows))
    return normalise(np.concatenate(parts))


def row_metadata(ds: Dataset, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Plain-array metadata of dataset rows (no object arrays)."""
    names = {key: np.asarray(ds.meta[key]) for key in ("subjects", "actions", "sequences")}
    cameras = np.asarray([c["name"] for c in ds.meta["cameras"]])
    pose = np.asarray(ds.joints_3d_camera[rows], dtype=np.float32)
    labelled = np.asarray(ds.labelled[rows], dtype=bool) & np.isfinite(pose).all(axis=(1, 2))
    pose = np.where(labelled[:, None, None], pose - pose[:, :1], np.nan).astype(np.float32)
    return {
        "row": rows.astype(np.int64),
        "subject": names["subjects"][ds.subject_id[rows]],
        "action": names["actions"][ds.action_id[rows]],
        "sequence": names["sequences"][ds.sequence_id[rows]],
        "camera": cameras[ds.camera_id[rows]],
        "frame": np.asarray(ds.frame[rows], dtype=np.int32),
        "time": np.asarray(ds.time[rows], dtype=np.float32),
        "labelled": labelled,
        "pose_camera": pose,
    }


def build_pose_index(
    model: LoadedModel, data: Path, params: IndexParams, split: str | None = None,
    batch_size: int = 256, on_progress: Callable[[int, int], None] | None = None,
) -> PoseIndex:
    """Embed a dataset folder (every row, or one split) and index the embeddings."""
    ds = Dataset(data)
    rows = np.arange(len(ds)) if split is None else ds.split_rows(split)
    if len(rows) == 0:
        raise PoseIndexError(f"{data}: no frame to index")
    embeddings = embed_dataset(model, ds, rows, batch_size, on_progress)
    index, resolved = build_faiss_index(embeddings, params)
    meta = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "params": resolved, "count": len(rows), "dim": int(embeddings.shape[1]),
        "metric": "L2 on L2-normalised embeddings; distances reported as Euclidean",
        "checkpoint": {"path": str(model.folder.resolve()),
                       "sha256": file_sha256(model.folder / MODEL_FILE)},
        "dataset": {"path": str(Path(data).resolve()), "image_size": int(ds.meta["image_size"]),
                    "num_frames": len(ds), "split": split},
        "input": input_description(int(ds.meta["image_size"])),
        "joint_names": list(JOINT_NAMES),
    }
    return PoseIndex(index, meta, row_metadata(ds, rows))


def save_pose_index(pose_index: PoseIndex, out: Path, overwrite: bool = False) -> Path:
    """Write the index folder atomically (a temporary sibling renamed into place)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise PoseIndexError(f"{out} exists; pass --overwrite or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        faiss.write_index(pose_index.index, str(tmp / INDEX_FILE))
        np.savez(tmp / ROWS_FILE, **pose_index.rows)
        (tmp / META_FILE).write_text(json.dumps(pose_index.meta, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pose_index.folder = out
    return out


def load_pose_index(folder: Path) -> PoseIndex:
    """Read an index folder written by :func:`save_pose_index`."""
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise PoseIndexError(f"{folder}: not a pose index (no {META_FILE}); build one with "
                             "`mcss index RUN --data DIR --out INDEX`")
    try:
        meta = json.loads(meta_path.read_text())
        with np.load(folder / ROWS_FILE, allow_pickle=False) as npz:
            rows = {k: npz[k] for k in npz.files}
        index = faiss.read_index(str(folder / INDEX_FILE))
    except (OSError, ValueError, RuntimeError) as err:
        raise PoseIndexError(f"{folder}: cannot read the index ({err}); build it again") from err
    if meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
        raise PoseIndexError(f"{meta_path}: not a version {FORMAT_VERSION} {FORMAT_NAME}")
    if index.ntotal != len(rows["row"]):
        raise PoseIndexError(f"{folder}: {index.ntotal} vectors but {len(rows['row'])} rows")
    configure_search(index, meta["params"])
    return PoseIndex(index, meta, rows, folder)


# --------------------------------------------------------------------------- queries


@dataclass
class SearchResult:
    """The query crop, its predicted pose, and its nearest indexed frames."""

    crop: np.ndarray  # (S, S, 3) uint8
    box: list[float]  # [x0, y0, side, side] px
    pose_camera: np.ndarray  # (17, 3) mm, the network's prediction for the query
    positions: np.ndarray  # (k,) positions into PoseIndex.rows (-1: no result)
    distances: np.ndarray  # (k,) Euclidean distances between normalised embeddings
    pose_error: np.ndarray  # (k,) PA-MPJPE (mm) of each hit's label to the query's pose


def query_crop(image_path: Path, box: list[float] | None, size: int) -> tuple[np.ndarray, list]:
    """The query image's crop (a ``[x0, y0, w, h]`` person box, or the centre square)."""
    image = read_image(image_path)
    h, w = image.shape[:2]
    square = centre_box(h, w) if box is None else square_from_xywh(box)
    cx, cy = square[0] + square[2] / 2, square[1] + square[3] / 2
    if not (0 <= cx < w and 0 <= cy < h):
        raise PredictError(f"{image_path}: the box {box} centred at ({cx:.0f}, {cy:.0f}) lies "
                           f"outside the {w}x{h} px image; --box is x0,y0,w,h in px")
    return crop(image, square, size), square.tolist()


def search_image(pose_index: PoseIndex, model: LoadedModel, image: Path,
                 box: list[float] | None = None, k: int = 10) -> SearchResult:
    """Embed one image with the index's own network and find its ``k`` nearest frames."""
    pose_index.check_checkpoint(model.folder)
    patch, square = query_crop(image, box, pose_index.image_size)
    out = run_network(model.model, patch[None])
    distances, ids = pose_index.search(out["embedding"], k)
    positions, distances = ids[0], distances[0]
    labels = np.nan_to_num(pose_index.rows["pose_camera"][positions.clip(0)].astype(np.float64))
    errors = pa_mpjpe(labels, np.broadcast_to(out["pose_camera"][0], labels.shape))
    errors = np.where((positions >= 0) & pose_index.rows["labelled"][positions.clip(0)],
                      errors, np.nan)
    return SearchResult(patch, square, out["pose_camera"][0], positions, distances, errors)


def hits_table(pose_index: PoseIndex, result: SearchResult) -> Table:
    """A rich table of the hits: rank, distance, where each frame comes from, and how far
    its 3D label is from the query's predicted pose."""
    table = Table(title=f"nearest frames in {pose_index.folder}",
                  caption="PA-MPJPE: the frame's 3D label against the query's predicted pose")
    for name in ("#", "distance", "sequence", "camera", "frame", "time s", "row",
                 "PA-MPJPE mm"):
        table.add_column(name, justify="left" if name in ("sequence", "camera") else "right")
    for rank, (pos, dist, err) in enumerate(zip(result.positions, result.distances,
                                               result.pose_error, strict=True), 1):
        if pos < 0:
            continue
        r = {k: v[pos] for k, v in pose_index.rows.items()}
        table.add_row(str(rank), f"{dist:.4f}", str(r["sequence"]), str(r["camera"]),
                      str(r["frame"]), f"{r['time']:.2f}", str(r["row"]),
                      "unlabelled" if np.isnan(err) else f"{err:.1f}")
    return table


def hits_json(pose_index: PoseIndex, result: SearchResult) -> dict[str, Any]:
    """The query and its hits with full poses (joints by name, mm), for ``--json``."""

    def named(pose: np.ndarray) -> dict[str, list[float]] | None:
        if not np.isfinite(pose).all():
            return None
        return dict(zip(JOINT_NAMES, np.round(pose.astype(np.float64), 2).tolist(), strict=True))

    hits = []
    for pos, dist, err in zip(result.positions, result.distances, result.pose_error,
                              strict=True):
        if pos < 0:
            continue
        r = {k: v[pos] for k, v in pose_index.rows.items()}
        hits.append({
            "distance": float(dist), "row": int(r["row"]), "subject": str(r["subject"]),
            "action": str(r["action"]), "sequence": str(r["sequence"]),
            "camera": str(r["camera"]), "frame": int(r["frame"]), "time": float(r["time"]),
            "pose_camera": named(r["pose_camera"]),
            "pa_mpjpe_to_query": None if np.isnan(err) else float(err),
        })
    return {"index": str(pose_index.folder), "query_box": result.box, "units": "mm",
            "query_pose_camera": named(result.pose_camera), "hits": hits}


def write_montage(pose_index: PoseIndex, result: SearchResult, out: Path) -> tuple[Path, bool]:
    """PNG of the query crop and its hits' crops, read from the indexed dataset folder (grey
    cells when it is gone). Returns the path and whether the dataset was found."""
    from mcss.draw import montage
    from mcss.predict import write_atomic

    found = _dataset(pose_index)
    matches, captions = [], ["query"]
    for rank, (pos, dist) in enumerate(zip(result.positions, result.distances, strict=True), 1):
        if pos < 0:
            continue
        row = int(pose_index.rows["row"][pos])
        matches.append(np.asarray(found.images[row]) if found is not None else None)
        captions.append(f"#{rank} d={dist:.3f}")
    sheet = montage(result.crop, matches, captions)
    return write_atomic(Path(out), lambda fh: sheet.save(fh, format="PNG")), found is not None


def _dataset(pose_index: PoseIndex) -> Dataset | None:
    recorded = pose_index.meta["dataset"]
    try:
        ds = Dataset(recorded["path"])
    except (ValueError, OSError):
        return None
    return ds if len(ds) == recorded["num_frames"] else None
