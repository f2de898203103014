"""Pose evaluation: predictions on a set of rows, metrics, and the sanity references.

The two references of DESIGN.md section 1 go beside every number: the *mean-pose predictor*
(the mean canonical pose of the labelled frames, the same answer for every image) and the
*nearest-labelled-pose oracle* (for each ground-truth pose, the closest labelled pose: the
best a model that only memorises labelled poses can do). A model worse than the mean pose is
broken, not a weak baseline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcss.augment import to_tensor
from mcss.checkpoint import CheckpointError, checkpoint_extra, load_checkpoint
from mcss.config import TrainConfig
from mcss.data.format import Dataset, DatasetError
from mcss.data.training import make_split
from mcss.distances import mean_pairwise_cosine
from mcss.distributed import pick_device
from mcss.geometry import to_canonical
from mcss.metrics import (
    auc,
    left_right_agreement,
    left_right_error_share,
    mpjpe,
    n_mpjpe,
    pa_mpjpe,
    pck,
)
from mcss.model import PoseNet, build_model


@torch.no_grad()
def predict(model: PoseNet, images: np.ndarray, batch_size: int = 128) -> dict[str, np.ndarray]:
    """Run the model (eval mode) on uint8 crops ``(N, H, W, 3)``: camera-frame and canonical
    poses (mm) and embeddings."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    camera, embeddings = [], []
    for lo in range(0, len(images), batch_size):
        out = model(to_tensor(np.asarray(images[lo : lo + batch_size])).to(device))
        camera.append(out.pose_camera.double().cpu().numpy())
        embeddings.append(out.embedding.double().cpu().numpy())
    model.train(was_training)
    pose_camera = np.concatenate(camera)
    # Both model variants are scored in the canonical frame of their camera-frame output,
    # so the view head's errors do not leak into the canonical score and vice versa.
    out_canonical = to_canonical(pose_camera)
    return {"pose_camera": pose_camera, "pose_canonical": out_canonical,
            "embedding": np.concatenate(embeddings)}


def labelled_poses(
    ds: Dataset, rows: np.ndarray, require_flag: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The rows that have a finite 3D label (and the ``labelled`` flag, if asked), and their
    root-relative camera-frame poses ``(N, 17, 3)`` mm."""
    gt = np.asarray(ds.joints_3d_camera[rows], dtype=np.float64)
    keep = np.isfinite(gt).all(axis=(1, 2))
    if require_flag:
        keep &= ds.labelled[rows]
    return rows[keep], gt[keep] - gt[keep, :1]


def nearest_pose_error(queries: np.ndarray, pool: np.ndarray, chunk: int = 256) -> np.ndarray:
    """For each query pose ``(N, 17, 3)``, the MPJPE to the nearest pose of ``pool``."""
    pool_t = torch.from_numpy(pool)
    best = []
    for lo in range(0, len(queries), chunk):
        q = torch.from_numpy(queries[lo : lo + chunk])
        errors = (q[:, None] - pool_t[None]).norm(dim=-1).mean(-1)  # (chunk, M)
        best.append(errors.min(dim=1).values.numpy())
    return np.concatenate(best)


def mean_pose_error(labelled_canonical: np.ndarray, gt_canonical: np.ndarray) -> np.ndarray:
    """Per frame, the MPJPE of the mean-pose predictor (mean labelled pose), canonical frame."""
    return mpjpe(labelled_canonical.mean(axis=0, keepdims=True), gt_canonical)


def sanity_references(labelled_camera: np.ndarray, gt_camera: np.ndarray) -> dict[str, float]:
    """Mean-pose predictor and nearest-labelled-pose oracle on ground-truth camera poses."""
    labelled_canonical = to_canonical(labelled_camera)
    gt_canonical = to_canonical(gt_camera)
    mean_pose = labelled_canonical.mean(axis=0, keepdims=True)
    unique = np.unique(np.round(labelled_canonical, 1), axis=0)  # views share a pose
    return {
        "mean_pose_mpjpe": float(mean_pose_error(labelled_canonical, gt_canonical).mean()),
        "mean_pose_pa_mpjpe": float(pa_mpjpe(np.broadcast_to(mean_pose, gt_canonical.shape),
                                             gt_canonical).mean()),
        "oracle_mpjpe": float(nearest_pose_error(gt_canonical, unique).mean()),
    }


def pose_spread(poses: np.ndarray) -> float:
    """Mean distance (mm) of poses from their mean pose: a collapse monitor."""
    return float(np.linalg.norm(poses - poses.mean(axis=0), axis=-1).mean())


def pose_metrics(pred: dict[str, np.ndarray], gt_camera: np.ndarray) -> dict[str, float]:
    """Camera-frame and canonical MPJPE, PA-MPJPE, embedding cosine, pose spread ratio, and
    how well the prediction tells the body's left from its right (agreement of the left-right
    asymmetry, the share of the squared canonical error that lies in it)."""
    gt_canonical = to_canonical(gt_camera)
    return {
        "mpjpe": float(mpjpe(pred["pose_camera"], gt_camera).mean()),
        "canonical_mpjpe": float(mpjpe(pred["pose_canonical"], gt_canonical).mean()),
        "pa_mpjpe": float(pa_mpjpe(pred["pose_camera"], gt_camera).mean()),
        "embedding_cosine": (mean_pairwise_cosine(torch.from_numpy(pred["embedding"]))
                             if len(gt_camera) >= 2 else float("nan")),  # needs a pair
        "spread_ratio": pose_spread(pred["pose_canonical"]) / max(pose_spread(gt_canonical), 1e-9),
        "left_right_agreement": float(left_right_agreement(pred["pose_canonical"],
                                                           gt_canonical).mean()),
        "left_right_error_share": left_right_error_share(pred["pose_canonical"], gt_canonical),
    }


# what an evaluation reports beside the errors: collapse, and left-right confusion
MONITORS = ("embedding_cosine", "spread_ratio", "left_right_agreement", "left_right_error_share")


def collapse_warnings(
    metrics: dict[str, float], max_cosine: float = 0.9, min_spread: float = 0.5
) -> list[str]:
    """Signs of embedding collapse (DESIGN.md section 1): every crop mapped near one point
    (mean pairwise cosine above ``max_cosine``) or poses regressed to the mean (predicted
    spread below ``min_spread`` of the ground truth's). An apparent gain with either sign is
    regression to the mean pose, not learning."""
    found = []
    if metrics["embedding_cosine"] > max_cosine:
        found.append(f"embedding collapse: mean pairwise cosine {metrics['embedding_cosine']:.3f}"
                     f" > {max_cosine}")
    if metrics["spread_ratio"] < min_spread:
        found.append(f"poses regress to the mean: spread {100 * metrics['spread_ratio']:.0f}% "
                     f"of the ground truth's < {100 * min_spread:.0f}%")
    return found


def load_trained(
    run_or_checkpoint: Path, device: str = "cpu"
) -> tuple[PoseNet, TrainConfig, Path]:
    """The trained model of a run folder (its latest checkpoint) or of one checkpoint folder,
    with the config it was trained with, on ``device`` (auto: a GPU if there is one)."""
    folder, extra = checkpoint_extra(Path(run_or_checkpoint))
    if "config" not in extra:
        raise CheckpointError(f"{folder}: the checkpoint carries no config; was it written by "
                              "`mcss train`?")
    cfg = TrainConfig(**extra["config"])
    model = build_model(cfg)
    load_checkpoint(folder, model, restore_rng=False)
    return model.to(pick_device(device)).eval(), cfg, folder


def per_frame_metrics(pred: dict[str, np.ndarray], gt_camera: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric, one value per frame (mm, or a fraction for PCK/AUC)."""
    gt_canonical = to_canonical(gt_camera)
    return {
        "mpjpe": mpjpe(pred["pose_camera"], gt_camera),
        "canonical_mpjpe": mpjpe(pred["pose_canonical"], gt_canonical),
        "n_mpjpe": n_mpjpe(pred["pose_camera"], gt_camera),
        "pa_mpjpe": pa_mpjpe(pred["pose_camera"], gt_camera),
        "pck150": pck(pred["pose_camera"], gt_camera, 150.0),
        "auc": auc(pred["pose_camera"], gt_camera),
    }


def per_subject(frames: dict[str, np.ndarray], subjects: np.ndarray,
                mean_pose: np.ndarray) -> dict[str, dict[str, float]]:
    """Each metric averaged over one subject's frames, with that subject's frame count and
    mean-pose predictor error: one actor dressed unlike the labelled one can fail alone."""
    return {str(s): {k: float(v[subjects == s].mean()) for k, v in frames.items()}
            | {"frames": int((subjects == s).sum()),
               "mean_pose_mpjpe": float(mean_pose[subjects == s].mean())}
            for s in sorted(set(subjects))}


def evaluate_run(run_or_checkpoint: Path, data: Path, split: str = "test") -> dict[str, Any]:
    """Protocol evaluation of a trained run on one split of a dataset: per-action table,
    mean over actions and mean over frames, the sanity references, collapse monitors."""
    model, cfg, folder = load_trained(run_or_checkpoint, device="auto")
    ds = Dataset(data)
    rows, gt = labelled_poses(ds, ds.split_rows(split), require_flag=True)
    if len(rows) == 0:
        raise DatasetError(f"{data}: split {split!r} has no frame with a 3D label to evaluate")
    pred = predict(model, ds.images[rows])
    frames = per_frame_metrics(pred, gt)
    actions = ds.actions[rows]
    per_action = {a: {k: float(v[actions == a].mean()) for k, v in frames.items()}
                  for a in sorted(set(actions))}
    labelled = make_split(ds, cfg).labelled
    labelled_gt = np.asarray(ds.joints_3d_camera[labelled], dtype=np.float64)
    labelled_gt -= labelled_gt[:, :1]
    return {
        "checkpoint": str(folder), "data": str(data), "split": split, "frames": len(rows),
        "lam": cfg.lam, "strategy": cfg.strategy, "channel_shuffle": cfg.channel_shuffle,
        "n_views": cfg.n_views, "n_sequences": cfg.n_sequences,
        "per_action": per_action,
        "per_subject": per_subject(frames, ds.subjects[rows],
                                   mean_pose_error(to_canonical(labelled_gt), to_canonical(gt))),
        "mean_over_actions": {k: float(np.mean([a[k] for a in per_action.values()]))
                              for k in frames},
        "mean_over_frames": {k: float(v.mean()) for k, v in frames.items()},
        "references": sanity_references(labelled_gt, gt),
        "monitors": {k: v for k, v in pose_metrics(pred, gt).items() if k in MONITORS},
    }


def evaluation_markdown(result: dict[str, Any]) -> str:
    """The evaluation as a markdown report: per-action table, averages and references."""
    cols = ("mpjpe", "canonical_mpjpe", "pa_mpjpe", "n_mpjpe", "pck150", "auc")
    head = "| action | MPJPE | canonical | PA-MPJPE | N-MPJPE | PCK@150 | AUC |"
    lines = [f"# Evaluation: {result['split']} split, {result['frames']} frames", "",
             f"checkpoint `{result['checkpoint']}`, data `{result['data']}`", "",
             head, "|---|" + "---:|" * len(cols)]

    def row(name: str, m: dict[str, float]) -> str:
        cells = [f"{m[c]:.1f}" if "pck" not in c and c != "auc" else f"{100 * m[c]:.1f}%"
                 for c in cols]
        return f"| {name} | " + " | ".join(cells) + " |"

    lines += [row(a, m) for a, m in result["per_action"].items()]
    lines += [row("**mean over actions**", result["mean_over_actions"]),
              row("**mean over frames**", result["mean_over_frames"])]
    if "per_subject" in result:
        lines += ["", "| subject | frames | MPJPE | canonical | PA-MPJPE | mean-pose predictor |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {s} | {m['frames']} | {m['mpjpe']:.1f} | {m['canonical_mpjpe']:.1f} | "
                  f"{m['pa_mpjpe']:.1f} | {m['mean_pose_mpjpe']:.1f} |"
                  for s, m in result["per_subject"].items()]
    ref, mon = result["references"], result["monitors"]
    lines += ["", "Sanity references (canonical frame, mm): mean-pose predictor "
              f"{ref['mean_pose_mpjpe']:.1f} (PA {ref['mean_pose_pa_mpjpe']:.1f}); "
              f"nearest-labelled-pose oracle {ref['oracle_mpjpe']:.1f}.",
              f"Collapse monitors: embedding mean pairwise cosine {mon['embedding_cosine']:.3f}, "
              f"predicted-pose spread {100 * mon['spread_ratio']:.0f}% of the ground truth's."]
    if "left_right_agreement" in mon:
        lines += [f"Left and right: agreement {mon['left_right_agreement']:.2f} with the "
                  "ground truth's left-right asymmetry (1: told apart, 0: averaged, -1: "
                  f"mirrored); {100 * mon['left_right_error_share']:.0f}% of the squared "
                  "canonical error lies in it."]
    lines += [f"WARNING: {w}" for w in collapse_warnings(mon)]
    return "\n".join(lines) + "\n"


def retrieve_runs(
    runs: dict[str, Path], data: Path, out: Path, split: str = "test",
    max_queries: int | None = 2000, seed: int = 0,
) -> dict[str, Any]:
    """Cross-view retrieval benchmark of trained runs (and a random ranking) on one split:
    ``results.json``, ``retrieval.md`` and one ``grid_<name>.png`` per run in ``out``."""
    from mcss.retrieval import (
        cross_view_retrieval,
        cross_view_search,
        random_ranking,
        retrieval_grid,
        retrieval_table,
        select_queries,
        topk_pa_mpjpe,
    )

    ds = Dataset(data)
    rows, poses = labelled_poses(ds, ds.split_rows(split))
    keys = {"camera": ds.viewpoint_id[rows], "sequence": ds.sequence_id[rows],
            "frame": ds.frame[rows]}
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name, run in runs.items():
        model, _, _ = load_trained(run, device="auto")
        emb = predict(model, ds.images[rows])["embedding"]
        results[name] = cross_view_retrieval(emb, poses, **keys, max_queries=max_queries,
                                             seed=seed)
        shown = select_queries(keys["camera"], max_queries=6, seed=seed)
        topk, _ = cross_view_search(emb, keys["camera"], shown, 5)
        retrieval_grid(ds.images, rows[shown], np.where(topk >= 0, rows[topk.clip(0)], -1),
                       out / f"grid_{name}.png", errors=topk_pa_mpjpe(poses, shown, topk),
                       labels=[f"query {r}" for r in rows[shown]])
    results["random"] = random_ranking(poses, **keys, max_queries=max_queries, seed=seed)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "retrieval.md").write_text(retrieval_table(results))
    return results


class Validator:
    """Validation on the held-out training subject, with the sanity references, and the fit
    of the labelled frames themselves.

    Frames whose 3D label is not finite are left out (and counted); with none left every
    metric is NaN rather than a number computed from nothing. ``fit_rows`` (the labelled
    rows) gives ``fit_canonical_mpjpe`` and ``fit_spread_ratio`` on an evenly spaced sample
    of as many frames: a model that does not fit its own labels (spread well under the
    ground truth's there too) needs more training, not more regularisation.
    """

    def __init__(self, ds: Dataset, rows: np.ndarray, labelled_camera: np.ndarray,
                 fit_rows: np.ndarray | None = None) -> None:
        kept, self.gt = labelled_poses(ds, rows)
        self.images = np.asarray(ds.images[kept])
        self.skipped = len(rows) - len(kept)
        self.references = sanity_references(labelled_camera, self.gt) if len(kept) else {}
        self.fit: tuple[np.ndarray, np.ndarray] | None = None
        if fit_rows is not None and len(fit_rows) and len(kept):
            pick = np.linspace(0, len(fit_rows) - 1, min(len(rows), len(fit_rows))).astype(int)
            fit_kept, fit_gt = labelled_poses(ds, fit_rows[pick])
            self.fit = (np.asarray(ds.images[fit_kept]), fit_gt)

    def __call__(self, model: PoseNet) -> dict[str, float]:
        if len(self.gt) == 0:
            keys = ("mpjpe", "canonical_mpjpe", "pa_mpjpe", "mean_pose_mpjpe",
                    "mean_pose_pa_mpjpe", "oracle_mpjpe", *MONITORS)
            return dict.fromkeys(keys, float("nan")) | {"skipped": self.skipped}
        metrics = pose_metrics(predict(model, self.images), self.gt)
        if self.fit is not None:
            fit = pose_metrics(predict(model, self.fit[0]), self.fit[1])
            metrics |= {"fit_canonical_mpjpe": fit["canonical_mpjpe"],
                        "fit_spread_ratio": fit["spread_ratio"]}
        return metrics | self.references | {"skipped": self.skipped}
