"""Cross-view retrieval: perfect and random embeddings on a synthetic multi-view set, gallery
exclusion, the analytic chance level and the result grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from mcss.geometry import to_canonical
from mcss.metrics import pa_mpjpe
from mcss.motion.procedural import REST_OFFSETS
from mcss.retrieval import (
    GRID_PAD,
    GRID_TEXT,
    cross_view_retrieval,
    cross_view_search,
    expected_random_hit,
    expected_random_hits,
    hit_key,
    random_ranking,
    retrieval_grid,
    retrieval_table,
    select_queries,
    topk_pa_mpjpe,
)
from mcss.skeleton import PARENTS

M, CAMERAS = 60, 3
KS, THRESHOLDS = (1, 5, 10, 20), (50.0, 75.0, 100.0)


def _random_rotation(rng: np.random.Generator, size: tuple[int, ...] = ()) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(*size, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]
    return q * np.sign(np.linalg.det(q))[..., None, None]


@pytest.fixture(scope="module")
def views() -> dict[str, np.ndarray]:
    """M poses, each seen by 3 cameras (a random rotation per camera and pose), rows shuffled.

    Poses are the rest skeleton plus 40 mm joint noise, so pairwise PA-MPJPE between distinct
    poses spans ~60-110 mm: under 50 mm only a pose's own twins match, at 75 mm about a fifth
    of the gallery does, at 100 mm nearly all of it (a range of chance levels to check).
    """
    rng = np.random.default_rng(0)
    rest = np.zeros((17, 3))
    for j, p in enumerate(PARENTS):
        if p >= 0:
            rest[j] = rest[p] + REST_OFFSETS[j]
    poses = rest + rng.normal(scale=40.0, size=(M, 17, 3))
    rot = _random_rotation(rng, (M, CAMERAS))
    camera_frame = np.einsum("mcij,mkj->mcki", rot, poses - poses[:, :1])
    order = rng.permutation(M * CAMERAS)
    return {
        "poses": camera_frame.reshape(-1, 17, 3)[order],
        "camera": np.tile(np.arange(CAMERAS), M)[order],
        "sequence": np.zeros(M * CAMERAS, dtype=np.int64)[order],
        "frame": np.repeat(np.arange(M), CAMERAS)[order],
    }


def _args(v: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    return v["poses"], v["camera"], v["sequence"], v["frame"]


def test_perfect_embedding_hits_at_one(views: dict[str, np.ndarray]) -> None:
    embedding = to_canonical(views["poses"]).reshape(len(views["poses"]), -1)
    res = cross_view_retrieval(embedding, *_args(views), ks=KS, thresholds=THRESHOLDS)
    assert res["num_queries"] == M * CAMERAS
    assert res["mean_gallery_size"] == (CAMERAS - 1) * M
    for t in THRESHOLDS:
        for k in KS:
            assert res[hit_key(k, t)] == 1.0
    assert res["same_instant@1"] == 1.0
    assert res["mean_pa_mpjpe@1"] < 1e-3  # the twin is the same pose, rotated
    # the second twin comes next, then other poses: the top-5 mean rises above zero
    assert res["mean_pa_mpjpe@5"] > 10.0


def test_query_camera_is_never_in_its_results(views: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(1)
    embedding = rng.normal(size=(len(views["camera"]), 8))
    camera = views["camera"]
    queries = select_queries(camera)
    topk, scores = cross_view_search(embedding, camera, queries, 2 * M)  # the whole gallery
    assert (topk >= 0).all()
    assert not (camera[topk] == camera[queries, None]).any()
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    # the top-k is the whole other-camera gallery: nothing missing, nothing repeated
    assert all(len(set(row)) == 2 * M for row in topk.tolist())
    one_camera = select_queries(camera, query_camera=2, max_queries=7, seed=3)
    assert len(one_camera) == 7 and (camera[one_camera] == 2).all()


def test_random_rankings_match_the_analytic_chance_level(views: dict[str, np.ndarray]) -> None:
    """Averaged over S seeds, the empirical Hit@k of a random ranking, and of a random
    embedding, must sit near the expectation.

    Random ranking: per seed, Hit@k is a mean of Q independent Bernoulli(p_i) outcomes, so its
    standard error is at most sqrt(p (1 - p) / Q) with p the mean of p_i (Jensen); over S seeds
    divide by sqrt(S). Tolerance 4 SE (a two-sided 4-sigma miss: ~6e-5 per check). A random
    embedding ranks each gallery uniformly too, but queries share gallery vectors, so outcomes
    are correlated: over 200 seeds its per-seed spread measured up to 1.3x the binomial bound,
    hence 5 SE (~3.8 sigma). The formula itself is checked exactly against brute-force
    binomials first; gallery exclusion is checked directly in the test above.
    """
    expected = expected_random_hits(*_args(views), ks=KS, thresholds=THRESHOLDS)
    # brute force with exact binomials: 1 - C(g - m, k) / C(g, k), averaged over queries
    poses, camera = views["poses"], views["camera"]
    g = (CAMERAS - 1) * M
    for k, t in [(1, 50.0), (5, 75.0), (20, 100.0)]:
        p = []
        for i in range(len(camera)):
            m = int((pa_mpjpe(poses[camera != camera[i]], poses[i]) <= t).sum())
            p.append(1 - math.comb(g - m, k) / math.comb(g, k))
        assert expected[hit_key(k, t)] == pytest.approx(np.mean(p), abs=1e-12)
    assert 2 / g <= expected[hit_key(1, 50.0)] < 3 / g  # mostly the two twins
    assert expected_random_hit(views["poses"], views["camera"], 5, 75.0) == pytest.approx(
        expected[hit_key(5, 75.0)]
    )
    seeds = range(12)
    q = len(views["camera"])
    rankings = [random_ranking(*_args(views), ks=KS, thresholds=THRESHOLDS, seed=s) for s in seeds]
    embeddings = [
        cross_view_retrieval(
            np.random.default_rng(100 + s).normal(size=(q, 16)), *_args(views),
            ks=KS, thresholds=THRESHOLDS,
        )
        for s in seeds
    ]
    for results, n_se in ((rankings, 4.0), (embeddings, 5.0)):
        for key in [hit_key(k, t) for k in KS for t in THRESHOLDS] + [
            f"same_instant@{k}" for k in KS
        ]:
            p = expected[key]
            se = np.sqrt(max(p * (1 - p), 1e-12) / (q * len(seeds)))
            measured = np.mean([r[key] for r in results])
            assert abs(measured - p) <= n_se * se + 1e-9, (key, measured, p, se)
    # the expected mean PA-MPJPE@k is the gallery mean, whatever k
    mean_random = np.mean([r["mean_pa_mpjpe@20"] for r in rankings])
    assert mean_random == pytest.approx(expected["mean_pa_mpjpe@20"], rel=0.03)


def test_table_and_grid(views: dict[str, np.ndarray], tmp_path) -> None:
    n = len(views["camera"])
    embedding = to_canonical(views["poses"]).reshape(n, -1)
    results = {
        "MCSS": cross_view_retrieval(embedding, *_args(views), max_queries=20),
        "random": random_ranking(*_args(views), max_queries=20),
    }
    table = retrieval_table(results)
    assert table.count("\n") == 4 and "| MCSS | 100.0 |" in table and "Hit@5 (75 mm)" in table

    h, w = 24, 20
    images = np.random.default_rng(0).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)
    queries = select_queries(views["camera"], query_camera=0, max_queries=3)
    topk, _ = cross_view_search(embedding, views["camera"], queries, 5)
    errors = topk_pa_mpjpe(views["poses"], queries, topk)
    out = retrieval_grid(images, queries, topk, tmp_path / "grid.png", errors=errors)
    with Image.open(out) as png:
        size = (6 * (w + GRID_PAD) + GRID_PAD, 3 * (h + GRID_TEXT + GRID_PAD) + GRID_PAD)
        assert png.size == size
        grid = np.asarray(png.convert("RGB"))
    y, x = GRID_PAD + GRID_TEXT, GRID_PAD + w + GRID_PAD  # first match of the first query
    assert (grid[y : y + h, x : x + w] == images[topk[0, 0]]).all()
