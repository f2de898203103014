"""Can a network's own predictions pair instants of two takes that show the same pose?

The lever left untried in session 21 adds multi-view positives *across* takes (and so across
actors): two instants whose predicted canonical poses, averaged over their views, are mutual
nearest neighbours. It can pay only if such pairs share a pose. For each run this draws the
same unlabelled batches (``--takes`` x ``--instants`` x ``--views``, the training sampler with
seed 0, the S1 split's unlabelled takes), averages each instant's predicted canonical pose and
embedding over its views, and pairs every instant with its mutual nearest neighbour among the
*other* takes' instants, by either key, within its batch (what one training step sees),
across the whole pool (what a memory bank would see) and among the pool's instants of the
same action (Human3.6M names every video's action: a prior that costs no label). Each pair is
then scored with the true poses, which training never sees (canonical MPJPE, mm): the median,
and the share closer than ``--close`` mm. Beside them, what an oracle matcher finds (the true
nearest other-take instant) and a random other-take instant; and the same scores for the
strictest quarter of the pairs (key distance at most its first quartile), what a tight
threshold would keep.

    python benchmarks/cross_take_matches.py --data runs/extra32/data \\
        --runs runs/rot6k/baseline-s0 runs/rot6k/mcss-lam0.03-all-views4-s0
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from machine import runs_parser, write_runs_result
from view_consistency import run_labels

SCOPES = ("batch", "pool", "action")
KEYS = ("pose", "embedding")


def mutual_nearest(dist: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)``, ``i < j``, each the other's nearest allowed item under ``dist``."""
    d = np.where(allowed, dist, np.inf)
    nearest = d.argmin(axis=1)
    has = np.isfinite(d.min(axis=1))
    i = np.nonzero(has & (nearest[nearest] == np.arange(len(d))))[0]
    i = i[i < nearest[i]]
    return i, nearest[i]


def pair_distances(poses: np.ndarray, chunk: int = 128) -> np.ndarray:
    """MPJPE between every two poses ``(N, 17, 3)``: ``(N, N)`` (rows in chunks: bounded
    memory for a large pool)."""
    return np.concatenate([np.linalg.norm(poses[lo:lo + chunk, None] - poses[None], axis=-1)
                           .mean(axis=-1) for lo in range(0, len(poses), chunk)])


def match_quality(key: np.ndarray, truth: np.ndarray, allowed: np.ndarray,
                  close: float) -> dict[str, float]:
    """Mutual nearest pairs by ``key`` distances, scored by ``truth`` distances (both
    ``(N, N)``); with the oracle (nearest by ``truth``) and random allowed pairs beside."""
    i, j = mutual_nearest(key, allowed)
    true = truth[i, j]
    strict = key[i, j] <= np.quantile(key[i, j], 0.25) if len(i) else np.zeros(0, bool)
    oracle = np.where(allowed, truth, np.inf).min(axis=1)
    return {"pairs_per_instant": 2 * len(i) / len(key),
            **_scored(true, close, ""), **_scored(true[strict], close, "strict_"),
            "oracle_median": _median(oracle[np.isfinite(oracle)]),
            "random_median": _median(truth[allowed])}


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if len(x) else float("nan")


def _scored(true: np.ndarray, close: float, prefix: str) -> dict[str, float]:
    """Median true distance of pairs and the share closer than ``close`` (NaN for none)."""
    share = float(np.mean(true < close)) if len(true) else float("nan")
    return {f"{prefix}true_median": _median(true), f"{prefix}close_share": share}


def pooled_instants(run: Path, ds: Any, shape: tuple[int, int, int], batches: int
                    ) -> dict[str, np.ndarray]:
    """The view-averaged predictions, true canonical poses, take, action and batch of each
    instant of ``batches`` unlabelled batches of shape (takes, instants, views)."""
    from mcss.data.batches import MultiViewBatchSampler
    from mcss.data.training import make_split
    from mcss.evaluate import labelled_poses, load_trained
    from mcss.geometry import to_canonical
    from mcss.predict import run_network

    model, cfg, _ = load_trained(run, device="cpu")
    takes = make_split(ds, dataclasses.replace(cfg, labelled="S1")).unlabelled_sequences
    sampler = MultiViewBatchSampler(ds.index, takes, *shape, cfg.min_gap, seed=0)
    per_batch = shape[0] * shape[1]
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("pose", "embedding", "truth", "take",
                                                         "action")}
    for step in range(batches):
        rows = sampler.batch(step)
        pred = run_network(model, ds.images[rows])
        out["pose"].append(pred["pose_canonical"].reshape(per_batch, shape[2], 17, 3).mean(1))
        out["embedding"].append(pred["embedding"].reshape(per_batch, shape[2], -1).mean(1))
        first_views = rows[::shape[2]]
        labelled, truth = labelled_poses(ds, first_views)
        if len(labelled) < len(first_views):
            raise SystemExit(f"{ds.path}: instants without 3D labels; this benchmark scores "
                             "pairs with the true poses (synthetic data)")
        out["truth"].append(to_canonical(truth))
        out["take"].append(ds.sequence_id[first_views])
        out["action"].append(ds.actions[first_views])
    pooled = {k: np.concatenate(v) for k, v in out.items()}
    pooled["batch"] = np.repeat(np.arange(batches), per_batch)
    return pooled


def run_matches(pooled: dict[str, np.ndarray], close: float) -> dict[str, Any]:
    """:func:`match_quality` of both keys in every scope."""
    truth = pair_distances(pooled["truth"])
    emb = pooled["embedding"] / np.linalg.norm(pooled["embedding"], axis=1, keepdims=True)
    keys = {"pose": pair_distances(pooled["pose"]),
            "embedding": np.linalg.norm(emb[:, None] - emb[None], axis=-1)}
    other_take = pooled["take"][:, None] != pooled["take"][None]
    same_batch = pooled["batch"][:, None] == pooled["batch"][None]
    same_action = pooled["action"][:, None] == pooled["action"][None]
    scopes = {"batch": other_take & same_batch, "pool": other_take,
              "action": other_take & same_action}
    return {"instants": len(truth), "close_mm": close, **{f"{scope}/{key}": match_quality(
        keys[key], truth, allowed, close) for scope, allowed in scopes.items() for key in KEYS}}


def markdown(results: dict[str, Any], close: float) -> str:
    lines = ["| run | scope | key | pairs per instant | true MPJPE of a pair (median) "
             f"| pairs < {close:g} mm | strictest quarter: median | < {close:g} mm "
             "| oracle's nearest | random |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        for scope in SCOPES:
            for key in KEYS:
                m = r[f"{scope}/{key}"]
                lines.append(f"| {name} | {scope} | {key} | {m['pairs_per_instant']:.2f} | "
                             f"{m['true_median']:.1f} | {100 * m['close_share']:.0f}% | "
                             f"{m['strict_true_median']:.1f} | "
                             f"{100 * m['strict_close_share']:.0f}% | "
                             f"{m['oracle_median']:.1f} | {m['random_median']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = runs_parser(__doc__, "cross_take_matches.json")
    ap.add_argument("--batches", type=int, default=100, help="unlabelled batches pooled")
    ap.add_argument("--takes", type=int, default=4, help="takes per batch")
    ap.add_argument("--instants", type=int, default=4, help="instants per take")
    ap.add_argument("--views", type=int, default=4, help="views per instant")
    ap.add_argument("--close", type=float, default=60.0,
                    help="a pair closer than this (true canonical MPJPE, mm) shares a pose")
    args = ap.parse_args()
    from mcss.data.format import Dataset

    ds = Dataset(args.data)
    shape = (args.takes, args.instants, args.views)
    runs = {label: run_matches(pooled_instants(run, ds, shape, args.batches), args.close)
            for run, label in zip(args.runs, run_labels(args.runs), strict=True)}
    print(markdown(runs, args.close))
    write_runs_result(args.results, runs)


if __name__ == "__main__":
    main()
