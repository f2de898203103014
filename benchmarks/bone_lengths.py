"""How much of the canonical error is the body's build (bone lengths) and how much its pose
(bone directions)?

With one labelled actor a network may learn that actor's proportions and give every other
actor them. For each run, on up to ``--max-frames`` crops of its validation subject (S8) and
of the test subjects (seed 0), the predicted canonical pose is rebuilt along the skeleton
with the true bone lengths (its directions kept) and, the other way round, the true pose
with the predicted lengths: the first error is what the directions cost, the second what
the lengths cost. Beside them, the error of the true directions with the labelled actors'
median bone lengths: what predicting the labelled build for everyone would cost at best.

    python benchmarks/bone_lengths.py --data runs/extra32/data \\
        --runs runs/long/baseline-s0 runs/long/mcss-lam0.03-all-views4-s0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from subject_groups import group_predictions, main_over_runs


def build_summary(pred: np.ndarray, gt: np.ndarray, labelled_lengths: np.ndarray
                  ) -> dict[str, float]:
    """Canonical poses ``(N, 17, 3)``: the error of the prediction, of its directions with the
    true lengths, of the true directions with its lengths and with ``labelled_lengths``
    ``(16,)``, and the mean absolute bone-length error (mm)."""
    from mcss.metrics import mpjpe
    from mcss.motion.variation import set_bone_lengths
    from mcss.skeleton import bone_lengths

    pred_lengths, gt_lengths = bone_lengths(pred), bone_lengths(gt)
    return {
        "canonical_mpjpe": float(mpjpe(pred, gt).mean()),
        "with_true_lengths": float(mpjpe(set_bone_lengths(pred, gt_lengths), gt).mean()),
        "with_true_directions": float(mpjpe(set_bone_lengths(gt, pred_lengths), gt).mean()),
        "labelled_build": float(mpjpe(set_bone_lengths(gt, labelled_lengths), gt).mean()),
        "length_error": float(np.abs(pred_lengths - gt_lengths).mean()),
        "frames": len(gt),
    }


def run_bone_lengths(run: Path, data: Path, max_frames: int) -> dict[str, Any]:
    from mcss.data.training import make_split
    from mcss.evaluate import labelled_poses
    from mcss.skeleton import bone_lengths

    ds, cfg, poses = group_predictions(run, data, max_frames)
    _, labelled = labelled_poses(ds, make_split(ds, cfg).labelled)
    labelled_lengths = np.median(bone_lengths(labelled), axis=0)
    out: dict[str, Any] = {"steps": cfg.steps, "lam": cfg.lam, "labelled": cfg.labelled,
                           "n_views": cfg.n_views, "seed": cfg.seed}
    return out | {group: build_summary(pred, gt, labelled_lengths)
                  for group, (pred, gt) in poses.items()}


HEADERS = ["steps", "labelled", "canonical", "with true lengths", "with true directions",
           "true directions, labelled build", "bone-length error"]


def cells(r: dict[str, Any], m: dict[str, float]) -> list[str]:
    actors = r["labelled"].split(",")
    labelled = f"{len(actors)} actors" if len(actors) > 3 else r["labelled"]
    return [str(r["steps"]), labelled] + [f"{m[k]:.1f}" for k in (
        "canonical_mpjpe", "with_true_lengths", "with_true_directions", "labelled_build",
        "length_error")]


def main() -> None:
    main_over_runs(__doc__, "bone_lengths_cpu.json", run_bone_lengths, HEADERS, cells)


if __name__ == "__main__":
    main()
