"""Cross-view pose retrieval (DESIGN.md section 1): does an embedding find the same pose
seen by another camera?

Each query's gallery is every row filmed by a *different* camera, so a match cannot come from
the query's own view (whose neighbouring frames look alike for reasons that are not the pose).
A hit at ``k`` for a threshold ``T``: one of the top-``k`` gallery rows has a 3D pose within
``T`` mm of the query's by PA-MPJPE (the gallery pose Procrustes-aligned onto the query's).

Search is exact (flat FAISS index). The gallery exclusion is done with one index per query
camera, holding the rows of all the other cameras, searched by that camera's queries. The
alternative, one index over everything fetched ``max_k + n_c`` deep and filtered afterwards,
needs ``n_c`` (the query camera's row count, about ``N / C``) extra results per query, so it
is no cheaper than brute force and adds a filtering pass; with ``C`` cameras (4 for Human3.6M)
the per-camera indexes cost ``C`` builds of ``(C - 1) / C * N`` vectors, one alive at a time.

Three rows of the results table come from here: a trained embedding
(:func:`cross_view_retrieval`), a seeded random ranking of the same galleries
(:func:`random_ranking`) and its analytic expectation (:func:`expected_random_hits`), which
says how far above chance a Hit@k is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import ArrayLike
from PIL import Image, ImageDraw

from mcss.metrics import pa_mpjpe

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20)
DEFAULT_THRESHOLDS: tuple[float, ...] = (50.0, 75.0, 100.0)
_PAIRS_PER_CHUNK = 1 << 15  # pose pairs per batched Procrustes call (~100 MB of temporaries)


def hit_key(k: int, threshold: float) -> str:
    """Result key of Hit@k at ``threshold`` mm, e.g. ``"hit@5/75mm"``."""
    return f"hit@{k}/{threshold:g}mm"


def select_queries(
    camera: ArrayLike,
    *,
    query_camera: int | None = None,
    max_queries: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Sorted query rows: those of ``query_camera`` (every row when None), at most
    ``max_queries`` of them drawn without replacement with ``seed``."""
    camera = np.asarray(camera)
    if query_camera is None:
        rows = np.arange(len(camera))
    else:
        rows = np.flatnonzero(camera == query_camera)
    if max_queries is not None and len(rows) > max_queries:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_queries, replace=False))
    return rows


def _by_camera(
    camera: np.ndarray, queries: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(positions in queries, gallery rows)`` for each camera that has queries."""
    if len(np.unique(camera)) < 2:
        raise ValueError("cross-view retrieval needs rows from at least two cameras")
    for cam in np.unique(camera[queries]):
        yield np.flatnonzero(camera[queries] == cam), np.flatnonzero(camera != cam)


def cross_view_search(
    embeddings: ArrayLike,
    camera: ArrayLike,
    queries: ArrayLike,
    k: int,
    *,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` gallery rows ``(Q, k)`` of each query row, best first, and their scores.

    The gallery of a query is every row of another camera. ``normalize``: cosine ranking
    (inner product of L2-normalised embeddings, scores are cosines); otherwise Euclidean
    ranking (scores are squared distances). Where a gallery has fewer than ``k`` rows the
    tail is padded with row ``-1`` (FAISS's convention) and a NaN score.
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got {x.shape}")
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    camera = np.asarray(camera)
    queries = np.asarray(queries, dtype=np.int64)
    topk = np.full((len(queries), k), -1, dtype=np.int64)
    scores = np.full((len(queries), k), np.nan, dtype=np.float32)
    for pos, gallery in _by_camera(camera, queries):
        kk = min(k, len(gallery))
        index = faiss.IndexFlatIP(x.shape[1]) if normalize else faiss.IndexFlatL2(x.shape[1])
        index.add(np.ascontiguousarray(x[gallery]))
        d, i = index.search(np.ascontiguousarray(x[queries[pos]]), kk)
        topk[pos, :kk] = gallery[i]
        scores[pos, :kk] = d
    return topk, scores


def random_search(
    camera: ArrayLike, queries: ArrayLike, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Top-``k`` rows ``(Q, k)`` of a uniformly random ranking of each query's other-camera
    gallery (independent per query), padded with ``-1`` like :func:`cross_view_search`."""
    camera = np.asarray(camera)
    queries = np.asarray(queries, dtype=np.int64)
    topk = np.full((len(queries), k), -1, dtype=np.int64)
    for pos, gallery in _by_camera(camera, queries):
        g = len(gallery)
        kk = min(k, g)
        step = max(1, _PAIRS_PER_CHUNK * 8 // g)
        for lo in range(0, len(pos), step):
            keys = rng.random((len(pos[lo : lo + step]), g))
            part = np.argpartition(keys, kk - 1, axis=1)[:, :kk] if kk < g else np.argsort(keys, 1)
            order = np.argsort(np.take_along_axis(keys, part, axis=1), axis=1)
            topk[pos[lo : lo + step], :kk] = gallery[np.take_along_axis(part, order, axis=1)]
    return topk


def topk_pa_mpjpe(poses: ArrayLike, queries: ArrayLike, topk: np.ndarray) -> np.ndarray:
    """PA-MPJPE (mm) ``(Q, k)`` of each retrieved pose aligned onto its query's pose; NaN
    where ``topk`` is padding (``-1``)."""
    poses = np.asarray(poses, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.int64)
    errors = np.full(topk.shape, np.nan)
    step = max(1, _PAIRS_PER_CHUNK // max(topk.shape[1], 1))
    for lo in range(0, len(queries), step):
        rows = topk[lo : lo + step]
        e = pa_mpjpe(poses[rows], poses[queries[lo : lo + step], None])
        errors[lo : lo + step] = np.where(rows >= 0, e, np.nan)
    return errors


def _header(gallery_sizes: np.ndarray, ks: Sequence[int], thresholds: Sequence[float]) -> dict:
    """The bookkeeping entries every result dict starts with (one gallery size per query)."""
    return {
        "num_queries": len(gallery_sizes),
        "mean_gallery_size": float(gallery_sizes.mean()) if len(gallery_sizes) else 0.0,
        "ks": [int(k) for k in ks],
        "thresholds": [float(t) for t in thresholds],
    }


def _summary(
    errors: np.ndarray,
    same_instant: np.ndarray,
    gallery_sizes: np.ndarray,
    ks: Sequence[int],
    thresholds: Sequence[float],
) -> dict:
    """Hit@k, mean PA-MPJPE@k and same-instant@k from per-query top-k errors ``(Q, K)`` and
    same-instant flags ``(Q, K)``."""
    out = _header(gallery_sizes, ks, thresholds)
    for t in thresholds:
        within = errors <= t  # NaN padding compares False
        for k in ks:
            out[hit_key(k, t)] = float(within[:, :k].any(axis=1).mean())
    for k in ks:
        out[f"mean_pa_mpjpe@{k}"] = float(np.nanmean(errors[:, :k], axis=1).mean())
        out[f"same_instant@{k}"] = float(same_instant[:, :k].any(axis=1).mean())
    return out


def _evaluate_ranking(
    topk: np.ndarray,
    queries: np.ndarray,
    poses: ArrayLike,
    camera: np.ndarray,
    sequence: ArrayLike,
    frame: ArrayLike,
    ks: Sequence[int],
    thresholds: Sequence[float],
) -> dict:
    sequence, frame = np.asarray(sequence), np.asarray(frame)
    errors = topk_pa_mpjpe(poses, queries, topk)
    same = (
        (topk >= 0)
        & (sequence[topk] == sequence[queries, None])
        & (frame[topk] == frame[queries, None])
    )
    cams, counts = np.unique(camera, return_counts=True)
    gallery_sizes = len(camera) - counts[np.searchsorted(cams, camera[queries])]
    return _summary(errors, same, gallery_sizes, ks, thresholds)


def cross_view_retrieval(
    embeddings: ArrayLike,
    poses: ArrayLike,
    camera: ArrayLike,
    sequence: ArrayLike,
    frame: ArrayLike,
    *,
    query_camera: int | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    normalize: bool = True,
    max_queries: int | None = None,
    seed: int = 0,
) -> dict:
    """Cross-view retrieval scores of ``embeddings`` ``(N, D)`` against 3D ``poses``
    ``(N, 17, 3)`` (mm; any per-row frame: PA-MPJPE is rotation-invariant).

    Queries: the rows of ``query_camera`` (every row when None), at most ``max_queries`` drawn
    with ``seed``; each query's gallery is every row of another camera (:func:`cross_view_search`).
    Returns ``hit@{k}/{T}mm`` (:func:`hit_key`) for every ``k`` and threshold, the mean over
    queries of the mean PA-MPJPE of the top ``k`` (``mean_pa_mpjpe@{k}``), the fraction of
    queries with the same instant (sequence and frame) of another camera in the top ``k``
    (``same_instant@{k}``), ``num_queries``, ``mean_gallery_size``, ``ks`` and ``thresholds``:
    plain numbers and lists, so the dict goes straight to JSON.
    """
    camera = np.asarray(camera)
    queries = select_queries(camera, query_camera=query_camera, max_queries=max_queries, seed=seed)
    topk, _ = cross_view_search(embeddings, camera, queries, max(ks), normalize=normalize)
    return _evaluate_ranking(topk, queries, poses, camera, sequence, frame, ks, thresholds)


def random_ranking(
    poses: ArrayLike,
    camera: ArrayLike,
    sequence: ArrayLike,
    frame: ArrayLike,
    *,
    query_camera: int | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    max_queries: int | None = None,
    seed: int = 0,
) -> dict:
    """:func:`cross_view_retrieval`'s scores for a seeded uniformly random ranking of each
    gallery: the chance level. Same queries as :func:`cross_view_retrieval` for the same
    ``seed``; the ranking draws from a separate stream of that seed."""
    camera = np.asarray(camera)
    queries = select_queries(camera, query_camera=query_camera, max_queries=max_queries, seed=seed)
    topk = random_search(camera, queries, max(ks), np.random.default_rng([seed, 1]))
    return _evaluate_ranking(topk, queries, poses, camera, sequence, frame, ks, thresholds)


def _random_hit_probability(g: np.ndarray, m: np.ndarray, k: int) -> np.ndarray:
    """P(a uniformly random ``k``-subset of ``g`` items holds one of ``m`` marked ones)
    ``= 1 - C(g - m, k) / C(g, k)``, as the product ``prod_i (g - m - i) / (g - i)`` over
    ``i < min(k, g)`` (no big binomials); vectorised over ``g`` and ``m``."""
    g = np.asarray(g, dtype=np.float64)[..., None]
    m = np.asarray(m, dtype=np.float64)[..., None]
    i = np.arange(k, dtype=np.float64)
    factors = np.where(i < g, np.clip(g - m - i, 0.0, None) / np.maximum(g - i, 1.0), 1.0)
    return 1.0 - factors.prod(axis=-1)


def expected_random_hits(
    poses: ArrayLike,
    camera: ArrayLike,
    sequence: ArrayLike,
    frame: ArrayLike,
    *,
    query_camera: int | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    max_queries: int | None = None,
    seed: int = 0,
) -> dict:
    """The expectation of :func:`random_ranking`'s scores, exactly, over the random ranking.

    For a query with ``g`` gallery rows of which ``m`` lie within ``T``,
    ``P(hit@k) = 1 - C(g - m, k) / C(g, k)``, averaged over queries (same for same-instant@k
    with ``m`` the same-instant rows); the expected mean PA-MPJPE@k is the mean PA-MPJPE of the
    whole gallery, for every ``k``. Costs one Procrustes fit per (query, gallery row) pair,
    ``O(Q N)``: use ``max_queries`` on large sets.
    """
    poses = np.asarray(poses, dtype=np.float64)
    camera, sequence, frame = np.asarray(camera), np.asarray(sequence), np.asarray(frame)
    queries = select_queries(camera, query_camera=query_camera, max_queries=max_queries, seed=seed)
    thr = np.asarray(thresholds, dtype=np.float64)
    within = np.zeros((len(queries), len(thr)), dtype=np.int64)
    same = np.zeros(len(queries), dtype=np.int64)
    mean_error = np.zeros(len(queries))
    gallery_sizes = np.zeros(len(queries), dtype=np.int64)
    for pos, gallery in _by_camera(camera, queries):
        gallery_sizes[pos] = len(gallery)
        q = queries[pos]
        same[pos] = np.sum(
            (sequence[gallery] == sequence[q, None]) & (frame[gallery] == frame[q, None]), axis=1
        )
        step = max(1, _PAIRS_PER_CHUNK // max(len(gallery), 1))
        for lo in range(0, len(pos), step):
            e = pa_mpjpe(poses[gallery][None], poses[q[lo : lo + step], None])  # (q, g)
            within[pos[lo : lo + step]] = (e[..., None] <= thr).sum(axis=1)
            mean_error[pos[lo : lo + step]] = e.mean(axis=1)
    out = _header(gallery_sizes, ks, thresholds)
    for j, t in enumerate(thresholds):
        for k in ks:
            p = _random_hit_probability(gallery_sizes, within[:, j], k)
            out[hit_key(k, t)] = float(p.mean())
    for k in ks:
        out[f"mean_pa_mpjpe@{k}"] = float(mean_error.mean())
        out[f"same_instant@{k}"] = float(_random_hit_probability(gallery_sizes, same, k).mean())
    return out


def expected_random_hit(
    poses: ArrayLike,
    camera: ArrayLike,
    k: int,
    threshold: float,
    *,
    query_camera: int | None = None,
    max_queries: int | None = None,
    seed: int = 0,
) -> float:
    """Expected Hit@``k`` at ``threshold`` mm of a random ranking (:func:`expected_random_hits`)."""
    n = len(np.asarray(camera))
    dummy = np.arange(n)  # distinct instants: same-instant counts are not needed here
    res = expected_random_hits(
        poses, camera, dummy, dummy, query_camera=query_camera, ks=(k,),
        thresholds=(threshold,), max_queries=max_queries, seed=seed,
    )
    return res[hit_key(k, threshold)]


def retrieval_table(results: Mapping[str, Mapping]) -> str:
    """Markdown table, one row per method (e.g. "MCSS", "baseline", "random"): Hit@k (%) at
    the middle threshold and mean PA-MPJPE@k (mm), for the ``ks`` and ``thresholds`` of the
    first result; a missing entry shows as a dash."""
    if not results:
        return ""
    first = next(iter(results.values()))
    ks, thresholds = first["ks"], first["thresholds"]
    t = thresholds[len(thresholds) // 2]
    header = (
        ["method"]
        + [f"Hit@{k} ({t:g} mm)" for k in ks]
        + [f"PA-MPJPE@{k} (mm)" for k in ks]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, res in results.items():
        hits = [f"{100 * res[hit_key(k, t)]:.1f}" if hit_key(k, t) in res else "–" for k in ks]
        errs = [
            f"{res[f'mean_pa_mpjpe@{k}']:.1f}" if f"mean_pa_mpjpe@{k}" in res else "–" for k in ks
        ]
        lines.append("| " + " | ".join([name, *hits, *errs]) + " |")
    return "\n".join(lines) + "\n"


GRID_PAD = 4  # px between cells and around the grid
GRID_TEXT = 14  # px of caption band above every cell


def retrieval_grid(
    images: np.ndarray,
    query_rows: ArrayLike,
    topk_rows: ArrayLike,
    out_png: str | os.PathLike[str],
    labels: Sequence[str] | None = None,
    errors: ArrayLike | None = None,
    num_matches: int = 5,
) -> Path:
    """Write a PNG grid: one row per query, its crop then its first ``num_matches`` matches.

    ``images`` ``(N, H, W, 3)`` uint8 (a memmap is fine: only the shown rows are read);
    ``topk_rows`` ``(Q, >= num_matches)`` (``-1`` cells stay blank); ``labels`` a caption per
    query (default ``"query <row>"``); ``errors`` ``(Q, >= num_matches)`` PA-MPJPE in mm,
    written above each match (e.g. from :func:`topk_pa_mpjpe`). The image is
    ``(1 + num_matches) * (W + GRID_PAD) + GRID_PAD`` wide and
    ``Q * (H + GRID_TEXT + GRID_PAD) + GRID_PAD`` high. Returns the path.
    """
    query_rows = np.asarray(query_rows, dtype=np.int64)
    topk_rows = np.asarray(topk_rows, dtype=np.int64)[:, :num_matches]
    err = None if errors is None else np.asarray(errors, dtype=np.float64)[:, :num_matches]
    h, w = images.shape[1:3]
    cell_w, cell_h = w + GRID_PAD, h + GRID_TEXT + GRID_PAD
    sheet = Image.new("RGB", ((1 + num_matches) * cell_w + GRID_PAD,
                              len(query_rows) * cell_h + GRID_PAD), "white")
    draw = ImageDraw.Draw(sheet)
    for r, q in enumerate(query_rows):
        y = GRID_PAD + r * cell_h
        cells = [(int(q), labels[r] if labels is not None else f"query {q}")]
        for j, row in enumerate(topk_rows[r]):
            text = "" if err is None or not np.isfinite(err[r, j]) else f"{err[r, j]:.0f} mm"
            cells.append((int(row), text))
        for c, (row, text) in enumerate(cells):
            x = GRID_PAD + c * cell_w
            draw.text((x + 1, y + 1), text, fill=(0, 0, 160) if c == 0 else (0, 0, 0))
            if row >= 0:
                sheet.paste(Image.fromarray(np.asarray(images[row], dtype=np.uint8)),
                            (x, y + GRID_TEXT))
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
