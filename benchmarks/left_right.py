"""Where does the canonical error lie: in the pose a mirror image shares, or in telling the
body's left from its right?

Each pose splits into a part its mirror image shares and a part the mirror negates
(``mcss.metrics.left_right_parts``; ``docs/metrics.md``). For each run, on up to
``--max-frames`` crops of its validation subject (S8) and of the test subjects (seed 0),
this gives the canonical MPJPE of each part, the share of the squared error in the
antisymmetric one, the agreement of the predicted and true left-right asymmetry (1: right,
0: a left-right average, -1: mirrored), the predicted asymmetry's size against the truth's,
and the fraction of crops whose prediction is nearer the mirror image of the truth.

    python benchmarks/left_right.py --data runs/extra32/data \\
        --runs runs/long/baseline-s0 runs/long/mcss-lam0.03-all-views4-s0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from long_schedule import validation_curve
from subject_groups import group_predictions, main_over_runs


def left_right_summary(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The split of canonical poses' error ``(N, 17, 3)`` into its two mirror parts."""
    from mcss.metrics import left_right_agreement, left_right_error_share, left_right_parts, mpjpe
    from mcss.skeleton import mirror

    (s_p, a_p), (s_g, a_g) = left_right_parts(pred), left_right_parts(gt)
    return {
        "canonical_mpjpe": float(mpjpe(pred, gt).mean()),
        "symmetric_mpjpe": float(mpjpe(s_p, s_g).mean()),
        "antisymmetric_mpjpe": float(mpjpe(a_p, a_g).mean()),
        "error_share": left_right_error_share(pred, gt),
        "agreement": float(left_right_agreement(pred, gt).mean()),
        "asymmetry_ratio": float(np.linalg.norm(a_p, axis=-1).mean()
                                 / max(np.linalg.norm(a_g, axis=-1).mean(), 1e-12)),
        # ties (a left-right average is as near both) count as not nearer the mirror
        "mirror_nearer": float((mpjpe(pred, mirror(gt, axis=0)) < mpjpe(pred, gt) - 1e-9).mean()),
        "frames": len(gt),
    }


def run_left_right(run: Path, data: Path, max_frames: int) -> dict[str, Any]:
    ds, cfg, poses = group_predictions(run, data, max_frames)
    out: dict[str, Any] = {"steps": cfg.steps, "lam": cfg.lam, "labelled": cfg.labelled,
                           "n_views": cfg.n_views, "seed": cfg.seed, "flip": cfg.flip,
                           "facing_gate": cfg.facing_gate,
                           # converted real data record no synthesis config
                           "marked_left": ds.meta.get("provenance", {}).get("config", {})
                           .get("marked_left", False)}
    out |= {group: left_right_summary(*pair) for group, pair in poses.items()}
    # the validation subject's canonical MPJPE and left-right agreement over training
    out["curve"] = [{k: v for k, v in row.items()
                     if k in ("step", "canonical_mpjpe", "left_right_agreement")}
                    for row in validation_curve(run)]
    return out


HEADERS = ["steps", "canonical", "symmetric part", "antisymmetric part", "error share",
           "agreement", "asymmetry size", "nearer the mirror"]


def cells(r: dict[str, Any], m: dict[str, float]) -> list[str]:
    return [str(r["steps"]), f"{m['canonical_mpjpe']:.1f}", f"{m['symmetric_mpjpe']:.1f}",
            f"{m['antisymmetric_mpjpe']:.1f}", f"{100 * m['error_share']:.0f}%",
            f"{m['agreement']:.2f}", f"{100 * m['asymmetry_ratio']:.0f}%",
            f"{100 * m['mirror_nearer']:.0f}%"]


def main() -> None:
    main_over_runs(__doc__, "left_right_cpu.json", run_left_right, HEADERS, cells)


if __name__ == "__main__":
    main()
