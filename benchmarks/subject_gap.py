"""Whom does a network serve: the labelled actor, the unlabelled actors it trained on, or new ones?

Every subject of the dataset is put in the role it had in a run's training: ``labelled`` (its
3D labels were fitted: S1), ``unlabelled`` (its takes fed the multi-view term, or only
BatchNorm for the baseline: S5-S7 and the extra actors), ``validation`` (held out: S8) and
``test`` (S9/S11). Canonical MPJPE and PA-MPJPE are measured on up to ``--max-frames`` crops of
every subject (drawn with seed 0) and averaged per role, subjects weighted alike.

If the multi-view term taught the network the actors it saw, ``unlabelled`` would beat
``validation``; if they are level, its gain carries over to new actors and more unlabelled
actors of the same kind cannot add much. ``labelled`` minus the rest is the gap a method
must close from one labelled actor.

    python benchmarks/subject_gap.py --data runs/extra32/data \\
        --runs runs/long/baseline-s0 runs/long/mcss-lam0.03-all-views4-s0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from machine import runs_arguments, write_runs_result

ROLES = ("labelled", "unlabelled", "validation", "test")


def subject_roles(subjects: np.ndarray, labelled_rows: np.ndarray, unlabelled_rows: np.ndarray,
                  val_subject: str | None, test_subjects: list[str]) -> dict[str, str]:
    """``{subject: role}``: a subject with labelled crops is ``labelled`` (also if some of its
    takes were unlabelled, as with a label percentage)."""
    roles = {str(s): "unlabelled" for s in np.unique(subjects[unlabelled_rows])}
    roles |= {str(s): "labelled" for s in np.unique(subjects[labelled_rows])}
    roles |= {s: "test" for s in test_subjects}
    if val_subject:
        roles[val_subject] = "validation"
    return roles


def role_means(per_subject: dict[str, dict[str, float]],
               roles: dict[str, str]) -> dict[str, dict[str, float]]:
    """Each metric averaged over the subjects of each role (subjects weighted alike)."""
    out = {}
    for role in ROLES:
        members = [per_subject[s] for s, r in roles.items() if r == role and s in per_subject]
        if members:
            out[role] = {k: float(np.mean([m[k] for m in members])) for k in members[0]}
            out[role]["subjects"] = len(members)
    return out


def run_gap(run: Path, data: Path, max_frames: int) -> dict[str, Any]:
    from mcss.data.format import Dataset
    from mcss.data.training import make_split
    from mcss.evaluate import labelled_poses, load_trained, per_frame_metrics, predict

    ds = Dataset(data)
    model, cfg, _ = load_trained(run, device="auto")
    split = make_split(ds, cfg)
    unlabelled_rows = np.flatnonzero(np.isin(ds.sequence_id, split.unlabelled_sequences))
    roles = subject_roles(ds.subjects, split.labelled, unlabelled_rows, cfg.val_subject,
                          list(ds.meta["splits"]["test"]))
    rng = np.random.default_rng(0)
    per_subject = {}
    for subject in sorted(roles):
        rows, gt = labelled_poses(ds, ds.rows_of([subject]))
        if len(rows) > max_frames:
            keep = np.sort(rng.choice(len(rows), max_frames, replace=False))
            rows, gt = rows[keep], gt[keep]
        frames = per_frame_metrics(predict(model, ds.images[rows]), gt)
        per_subject[subject] = {k: float(frames[k].mean())
                                for k in ("canonical_mpjpe", "pa_mpjpe")} | {"frames": len(rows)}
    return {"lam": cfg.lam, "roles": role_means(per_subject, roles),
            "per_subject": per_subject, "role_of": roles}


def markdown(results: dict[str, Any]) -> str:
    head = "| run | " + " | ".join(ROLES) + " |\n|---|" + "---:|" * len(ROLES) + "\n"
    rows = []
    for name, run in results.items():
        cells = [f"{run['roles'][r]['canonical_mpjpe']:.1f} / {run['roles'][r]['pa_mpjpe']:.1f}"
                 if r in run["roles"] else "-" for r in ROLES]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "canonical MPJPE / PA-MPJPE, mm, mean over the subjects of each role\n\n" + head + \
        "\n".join(rows)


def main() -> None:
    args = runs_arguments(__doc__, "subject_gap.json", 300, "crops per subject")
    results = {run.name: run_gap(run, args.data, args.max_frames) for run in args.runs}
    print(markdown(results))
    write_runs_result(args.results, results)


if __name__ == "__main__":
    main()
