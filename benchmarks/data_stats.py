"""How far are the test poses of a dataset from its training poses?

A benchmark of limited supervision means something only if the test poses are neither
near-copies of the labelled poses (then memorising S1 solves it) nor outside everything the
training subjects do (then nothing can learn them). This script measures, for every test
pose (S9, S11; root-relative, one camera per instant so views are not double counted):

* PA-MPJPE (Procrustes similarity alignment, :func:`mcss.geometry.procrustes_align`) to the
  nearest S1 pose and to the nearest pose of any training subject (S1, S5, S6, S7, S8): the
  *nearest-labelled-pose oracle* of DESIGN.md; the candidate pose is aligned onto the test pose,
  as a prediction is aligned onto the ground truth;
* MPJPE to the nearest pose in the canonical body frame (:func:`mcss.geometry.to_canonical`),
  no alignment;
* the error of the *mean-pose predictor* (mean S1 pose): MPJPE in the canonical body frame,
  PA-MPJPE, and MPJPE in the world frame after removing only the root (global heading counts).

Nearest-neighbour search: ``exact`` aligns every (test, candidate) pair (chunked, batched
SVD); ``prefilter`` keeps the ``k`` nearest candidates by canonical-frame MPJPE and aligns
those only; ``auto`` (default) is exact up to ``--max-exact-pairs`` pairs.

Usage::

    python benchmarks/data_stats.py --data /tmp/bench_quick
        [--preset quick] [--method auto] [--out benchmarks/results/data_stats.json]

If ``--data`` does not exist, the preset is synthesised there first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from machine import load_average
from mcss.data.format import Dataset
from mcss.geometry import procrustes_align, to_canonical
from mcss.synth.generate import preset, synthesize

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
LABELLED_SUBJECTS = ("S1",)
TEST_SUBJECTS = ("S9", "S11")
NEAR_COPY_MM = 20.0
PAIRS_PER_CHUNK = 60_000  # (test, candidate) pairs aligned at once: ~25 MB per float64 array


def mpjpe(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean per-joint Euclidean distance over the joint axis (``(..., J, 3)`` -> ``(...)``)."""
    return np.linalg.norm(pred - target, axis=-1).mean(axis=-1)


def pa_mpjpe_pairs(candidates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """PA-MPJPE of every candidate aligned onto every target: ``(T, M)``.

    ``candidates`` ``(M, J, 3)`` or per-target ``(T, M, J, 3)``; ``targets`` ``(T, J, 3)``.
    """
    cand = candidates if candidates.ndim == 4 else candidates[None]
    aligned = procrustes_align(cand, targets[:, None])
    return mpjpe(aligned, targets[:, None])


def _chunks(n_rows: int, per_row: int):
    step = max(1, PAIRS_PER_CHUNK // max(per_row, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def nearest_exact(test: np.ndarray, cand: np.ndarray, groups: dict[str, np.ndarray]) -> dict:
    """Nearest PA-MPJPE over every candidate of each group (boolean masks over ``cand``)."""
    out = {name: np.empty(len(test)) for name in groups}
    for sl in _chunks(len(test), len(cand)):
        err = pa_mpjpe_pairs(cand, test[sl])
        for name, mask in groups.items():
            out[name][sl] = err[:, mask].min(axis=1)
    return out


def nearest_prefilter(
    test_can: np.ndarray, cand_can: np.ndarray, groups: dict[str, np.ndarray], k: int
) -> dict:
    """Nearest PA-MPJPE among the ``k`` nearest candidates (canonical MPJPE) of each group."""
    out = {name: np.empty(len(test_can)) for name in groups}
    for name, mask in groups.items():
        pool = cand_can[mask]
        kk = min(k, len(pool))
        for sl in _chunks(len(test_can), len(pool)):
            dist = mpjpe(pool[None], test_can[sl, None])
            top = np.argpartition(dist, kk - 1, axis=1)[:, :kk]
            out[name][sl] = pa_mpjpe_pairs(pool[top], test_can[sl]).min(axis=1)
    return out


def nearest_canonical(test_can: np.ndarray, cand_can: np.ndarray, groups: dict) -> dict:
    """Nearest plain MPJPE in the canonical body frame (no alignment)."""
    out = {name: np.empty(len(test_can)) for name in groups}
    for sl in _chunks(len(test_can), len(cand_can)):
        dist = mpjpe(cand_can[None], test_can[sl, None])
        for name, mask in groups.items():
            out[name][sl] = dist[:, mask].min(axis=1)
    return out


def summary(values: np.ndarray) -> dict[str, float]:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {
        "median": float(p50),
        "p10": float(p10),
        "p90": float(p90),
        "mean": float(values.mean()),
        "n": int(len(values)),
    }


def load_poses(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """World joints (mm) and subject names of the camera-0 rows with a 3D pose."""
    rows = np.flatnonzero(ds.camera_id == 0)
    joints = ds.joints_3d_world[rows].astype(np.float64)
    ok = np.isfinite(joints).all(axis=(1, 2))
    if not ok.any():
        raise SystemExit(f"{ds.path}: no camera-0 row has world-frame 3D joints")
    return joints[ok], ds.subjects[rows][ok]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset folder")
    parser.add_argument(
        "--preset", default="quick", help="synthesised into --data when it does not exist"
    )
    parser.add_argument("--method", choices=["auto", "exact", "prefilter"], default="auto")
    parser.add_argument("--k", type=int, default=32, help="candidates kept by the prefilter")
    parser.add_argument("--max-exact-pairs", type=int, default=20_000_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/data_stats.json"))
    args = parser.parse_args(argv)

    load_before = load_average()
    synth_seconds = None
    if not args.data.exists():
        print(f"synthesising preset {args.preset!r} into {args.data}", file=sys.stderr)
        start = time.perf_counter()
        synthesize(preset(args.preset), args.data)
        synth_seconds = time.perf_counter() - start
    ds = Dataset(args.data)
    joints, subjects = load_poses(ds)
    missing = [s for s in (*TRAIN_SUBJECTS, *TEST_SUBJECTS) if s not in set(subjects)]
    if missing:
        raise SystemExit(f"{args.data}: no camera-0 poses of subjects {missing}")

    root_rel = joints - joints[:, :1]
    canonical = to_canonical(joints)
    is_test = np.isin(subjects, TEST_SUBJECTS)
    is_train = np.isin(subjects, TRAIN_SUBJECTS)
    test_rr, test_can = root_rel[is_test], canonical[is_test]
    cand_rr, cand_can = root_rel[is_train], canonical[is_train]
    cand_subj = subjects[is_train]
    groups = {"S1": np.isin(cand_subj, LABELLED_SUBJECTS), "train": np.ones(len(cand_subj), bool)}

    pairs = len(test_rr) * len(cand_rr)
    method = args.method
    if method == "auto":
        method = "exact" if pairs <= args.max_exact_pairs else "prefilter"
    start = time.perf_counter()
    if method == "exact":
        nearest_pa = nearest_exact(test_rr, cand_rr, groups)
    else:
        nearest_pa = nearest_prefilter(test_can, cand_can, groups, args.k)
    search_seconds = time.perf_counter() - start
    nearest_can = nearest_canonical(test_can, cand_can, groups)

    s1 = subjects == "S1"
    mean_can = canonical[s1].mean(axis=0)
    mean_world = root_rel[s1].mean(axis=0)
    mean_pose = {
        "canonical_mpjpe": mpjpe(mean_can, test_can),
        "pa_mpjpe": mpjpe(
            procrustes_align(np.broadcast_to(mean_can, test_can.shape), test_can), test_can
        ),
        "world_root_relative_mpjpe": mpjpe(mean_world, test_rr),
    }

    test_subj = subjects[is_test]
    per_subject = {
        s: {
            "nearest_S1_pa_mpjpe_median": float(np.median(nearest_pa["S1"][test_subj == s])),
            "nearest_train_pa_mpjpe_median": float(np.median(nearest_pa["train"][test_subj == s])),
            "mean_pose_canonical_mpjpe_median": float(
                np.median(mean_pose["canonical_mpjpe"][test_subj == s])
            ),
        }
        for s in TEST_SUBJECTS
    }
    stats = {
        "nearest_S1_pa_mpjpe": summary(nearest_pa["S1"]),
        "nearest_train_pa_mpjpe": summary(nearest_pa["train"]),
        "nearest_S1_canonical_mpjpe": summary(nearest_can["S1"]),
        "nearest_train_canonical_mpjpe": summary(nearest_can["train"]),
        "mean_pose_canonical_mpjpe": summary(mean_pose["canonical_mpjpe"]),
        "mean_pose_pa_mpjpe": summary(mean_pose["pa_mpjpe"]),
        "mean_pose_world_root_relative_mpjpe": summary(mean_pose["world_root_relative_mpjpe"]),
    }
    near_copy_fraction = float((nearest_pa["S1"] < NEAR_COPY_MM).mean())
    med = {k: v["median"] for k, v in stats.items()}
    interpretation = [
        (
            f"Near-copies: the median test pose is {med['nearest_S1_pa_mpjpe']:.1f} mm "
            f"PA-MPJPE from its nearest S1 pose ({100 * near_copy_fraction:.1f}% of test poses "
            f"are within {NEAR_COPY_MM:.0f} mm). "
            + (
                "That is below the threshold: test poses are near-copies of S1's and the "
                "benchmark measures nothing."
                if med["nearest_S1_pa_mpjpe"] < NEAR_COPY_MM
                else f"That is above {NEAR_COPY_MM:.0f} mm: test poses are not copies of S1's."
            )
        ),
        (
            f"Reachability: nearest training pose {med['nearest_train_pa_mpjpe']:.1f} mm "
            f"PA-MPJPE vs mean pose {med['mean_pose_pa_mpjpe']:.1f} mm PA-MPJPE; in the "
            f"canonical frame {med['nearest_train_canonical_mpjpe']:.1f} mm vs "
            f"{med['mean_pose_canonical_mpjpe']:.1f} mm (MPJPE). "
            + (
                "Test poses are outside every training pose: nothing can learn them."
                if med["nearest_train_pa_mpjpe"] >= med["mean_pose_pa_mpjpe"]
                or med["nearest_train_canonical_mpjpe"] >= med["mean_pose_canonical_mpjpe"]
                else "Test poses lie within the training poses' reach (nearest < mean pose)."
            )
        ),
        (
            f"Labelled gap: the nearest S1 pose is {med['nearest_S1_pa_mpjpe']:.1f} mm "
            f"PA-MPJPE away, the nearest of any training subject "
            f"{med['nearest_train_pa_mpjpe']:.1f} mm: the room an unlabelled-data method has "
            "to improve on a model that only memorises S1."
        ),
        (
            f"Global heading: the mean pose is {med['mean_pose_world_root_relative_mpjpe']:.1f} "
            f"mm off in the world frame (root removed only) vs "
            f"{med['mean_pose_canonical_mpjpe']:.1f} mm in the canonical body frame."
        ),
    ]

    result = {
        "benchmark": "data_stats",
        "data": str(args.data),
        "dataset_provenance": ds.meta.get("provenance"),
        "synthesised_now_seconds": synth_seconds,
        "poses": {
            "camera_id": 0,
            "frame": "world joints, root-relative (pelvis removed)",
            "test": int(is_test.sum()),
            "S1": int(s1.sum()),
            "train": int(is_train.sum()),
            "test_subjects": list(TEST_SUBJECTS),
            "train_subjects": list(TRAIN_SUBJECTS),
        },
        "nearest_neighbour": {
            "method": method,
            "k": args.k if method == "prefilter" else None,
            "description": (
                "exact: PA-MPJPE of every (test, candidate) pair"
                if method == "exact"
                else f"prefilter: the {args.k} nearest candidates by canonical-frame MPJPE, "
                "then the smallest PA-MPJPE among them"
            ),
            "alignment": "candidate aligned onto the test pose (similarity: rotation, "
            "translation, scale)",
            "pairs": pairs,
            "seconds": search_seconds,
        },
        "mean_pose": "mean of S1's poses (canonical frame, or world frame root-relative)",
        "stats_mm": stats,
        "per_test_subject_mm": per_subject,
        "near_copy_threshold_mm": NEAR_COPY_MM,
        "near_copy_fraction": near_copy_fraction,
        "interpretation": interpretation,
        "machine": {
            "os_cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy_version": np.__version__,
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")

    labels = {
        "nearest_S1_pa_mpjpe": "nearest S1 pose, PA-MPJPE",
        "nearest_train_pa_mpjpe": "nearest training pose (S1,S5-S8), PA-MPJPE",
        "nearest_S1_canonical_mpjpe": "nearest S1 pose, canonical MPJPE",
        "nearest_train_canonical_mpjpe": "nearest training pose, canonical MPJPE",
        "mean_pose_canonical_mpjpe": "mean S1 pose, canonical MPJPE",
        "mean_pose_pa_mpjpe": "mean S1 pose, PA-MPJPE",
        "mean_pose_world_root_relative_mpjpe": "mean S1 pose, world MPJPE (root removed)",
    }
    print(
        f"\nTest poses (S9, S11; {int(is_test.sum())} instants, camera 0) vs training poses "
        f"({args.data}, nearest neighbour: {method}), mm\n"
    )
    print("| reference | median | p10 | p90 | mean |")
    print("|---|---:|---:|---:|---:|")
    for key, label in labels.items():
        s = stats[key]
        print(
            f"| {label} | {s['median']:.1f} | {s['p10']:.1f} | {s['p90']:.1f} | {s['mean']:.1f} |"
        )
    print()
    for line in interpretation:
        print(f"- {line}")
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
