"""Where is the gap from the labelled actor to the others: in the embedding, or in the regressor?

For each trained run and each held-out subject (the validation subject and the test subjects),
every crop is embedded and its pose read two ways: the network's own regression, and the 3D
label of the nearest labelled crop in embedding space (1-NN; and the mean of the 5 nearest).
Beside them, the nearest-labelled-pose oracle (the labelled pose nearest to the truth: the best
any lookup into the labels can do) and the mean-pose predictor. Canonical MPJPE, mm, mean over
frames. Also the share of 1-NN lookups that come from the query's own camera (chance: one in
the number of cameras): the rig's backgrounds are one per camera, so a high share says the
neighbourhoods follow the camera, not the pose.

If the lookup is as good as the regression, the regressor adds nothing to the embedding's
neighbourhoods; the distance from lookup to oracle is what a more actor-invariant embedding
could still win, while a regression that beats the lookup interpolates between labelled poses.

    python benchmarks/labelled_neighbours.py --data runs/extra32/data \\
        --runs runs/long/baseline-s0 runs/long/mcss-lam0.03-all-s0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from machine import runs_arguments, write_runs_result


def nearest_labelled(labelled_emb: np.ndarray, query_emb: np.ndarray, k: int) -> np.ndarray:
    """Indices ``(N, k)`` of the ``k`` labelled embeddings nearest to each query (cosine)."""
    import faiss

    from mcss.pose_index import normalise

    index = faiss.IndexFlatIP(labelled_emb.shape[1])
    index.add(normalise(labelled_emb))
    return index.search(normalise(query_emb), k)[1]


def lookup_errors(labelled_pose: np.ndarray, labelled_emb: np.ndarray, query_pose: np.ndarray,
                  query_emb: np.ndarray, regressed: np.ndarray,
                  cameras: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Canonical MPJPE (mm, mean over frames) of the regression, the 1-NN and 5-NN lookups of
    labelled poses in embedding space, the nearest-labelled-pose oracle and the mean pose.
    With ``cameras`` (labelled, query viewpoint ids) also the share of 1-NN lookups taken from
    the query's own camera."""
    from mcss.evaluate import mean_pose_error, nearest_pose_error
    from mcss.metrics import mpjpe

    knn = nearest_labelled(labelled_emb, query_emb, 5)
    unique = np.unique(np.round(labelled_pose, 1), axis=0)  # the cameras of one instant
    errors = {
        "regression": float(mpjpe(regressed, query_pose).mean()),
        "lookup_1nn": float(mpjpe(labelled_pose[knn[:, 0]], query_pose).mean()),
        "lookup_5nn_mean": float(mpjpe(labelled_pose[knn].mean(axis=1), query_pose).mean()),
        "oracle": float(nearest_pose_error(query_pose, unique).mean()),
        "mean_pose": float(mean_pose_error(labelled_pose, query_pose).mean()),
        "frames": len(query_pose),
    }
    if cameras is not None:
        labelled_camera, query_camera = cameras
        errors["same_camera_1nn"] = float((labelled_camera[knn[:, 0]] == query_camera).mean())
    return errors


def run_neighbours(run: Path, data: Path, max_frames: int) -> dict[str, Any]:
    """``{subject: lookup_errors}`` of one run, on its validation subject and the test split."""
    from mcss.data.format import Dataset
    from mcss.data.training import make_split
    from mcss.evaluate import labelled_poses, load_trained, predict
    from mcss.geometry import to_canonical

    ds = Dataset(data)
    model, cfg, _ = load_trained(run, device="auto")
    rng = np.random.default_rng(0)

    def embedded(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        rows, gt = labelled_poses(ds, rows)
        if len(rows) > max_frames:
            keep = np.sort(rng.choice(len(rows), max_frames, replace=False))
            rows, gt = rows[keep], gt[keep]
        return rows, to_canonical(gt), predict(model, ds.images[rows])

    labelled_rows, labelled_pose, labelled_out = embedded(make_split(ds, cfg).labelled)
    subjects = [s for s in [cfg.val_subject, *ds.meta["splits"]["test"]] if s]
    result = {}
    for subject in subjects:
        rows, pose, out = embedded(ds.rows_of([subject]))
        result[subject] = lookup_errors(
            labelled_pose, labelled_out["embedding"], pose, out["embedding"],
            out["pose_canonical"], (ds.viewpoint_id[labelled_rows], ds.viewpoint_id[rows]))
    return {"lam": cfg.lam, "labelled_frames": len(labelled_pose),
            "cameras": len(ds.meta["cameras"]), "subjects": result}


def markdown(results: dict[str, Any]) -> str:
    rows = [f"| {name} | {subject} | {r['regression']:.1f} | {r['lookup_1nn']:.1f} | "
            f"{r['lookup_5nn_mean']:.1f} | {r['oracle']:.1f} | {r['mean_pose']:.1f} | "
            f"{100 * r['same_camera_1nn']:.0f}% |"
            for name, run in results.items() for subject, r in run["subjects"].items()]
    return ("| run | subject | regression | 1-NN lookup | 5-NN mean | oracle | mean pose | "
            "1-NN from the query's camera |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
            + "\n".join(rows))


def main() -> None:
    args = runs_arguments(__doc__, "labelled_neighbours.json", 4000,
                          "crops per subject (and of the labelled set), drawn with seed 0")
    results = {run.name: run_neighbours(run, args.data, args.max_frames) for run in args.runs}
    print(markdown(results))
    write_runs_result(args.results, results)


if __name__ == "__main__":
    main()
