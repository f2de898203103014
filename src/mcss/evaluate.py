"""Pose evaluation: predictions on a set of rows, metrics, and the sanity references.

The two references of DESIGN.md section 1 go beside every number: the *mean-pose predictor*
(the mean canonical pose of the labelled frames, the same answer for every image) and the
*nearest-labelled-pose oracle* (for each ground-truth pose, the closest labelled pose: the
best a model that only memorises labelled poses can do). A model worse than the mean pose is
broken, not a weak baseline.
"""

from __future__ import annotations

import numpy as np
import torch

from mcss.augment import to_tensor
from mcss.distances import mean_pairwise_cosine
from mcss.geometry import to_canonical
from mcss.metrics import mpjpe, pa_mpjpe
from mcss.model import PoseNet


@torch.no_grad()
def predict(model: PoseNet, images: np.ndarray, batch_size: int = 128) -> dict[str, np.ndarray]:
    """Run the model (eval mode) on uint8 crops ``(N, H, W, 3)``: camera-frame and canonical
    poses (mm) and embeddings."""
    was_training = model.training
    model.eval()
    camera, embeddings = [], []
    for lo in range(0, len(images), batch_size):
        out = model(to_tensor(np.asarray(images[lo : lo + batch_size])))
        camera.append(out.pose_camera.double().numpy())
        embeddings.append(out.embedding.double().numpy())
    model.train(was_training)
    pose_camera = np.concatenate(camera)
    # Both model variants are scored in the canonical frame of their camera-frame output,
    # so the view head's errors do not leak into the canonical score and vice versa.
    out_canonical = to_canonical(pose_camera)
    return {"pose_camera": pose_camera, "pose_canonical": out_canonical,
            "embedding": np.concatenate(embeddings)}


def nearest_pose_error(queries: np.ndarray, pool: np.ndarray, chunk: int = 256) -> np.ndarray:
    """For each query pose ``(N, 17, 3)``, the MPJPE to the nearest pose of ``pool``."""
    pool_t = torch.from_numpy(pool)
    best = []
    for lo in range(0, len(queries), chunk):
        q = torch.from_numpy(queries[lo : lo + chunk])
        errors = (q[:, None] - pool_t[None]).norm(dim=-1).mean(-1)  # (chunk, M)
        best.append(errors.min(dim=1).values.numpy())
    return np.concatenate(best)


def sanity_references(labelled_camera: np.ndarray, gt_camera: np.ndarray) -> dict[str, float]:
    """Mean-pose predictor and nearest-labelled-pose oracle on ground-truth camera poses."""
    labelled_canonical = to_canonical(labelled_camera)
    gt_canonical = to_canonical(gt_camera)
    mean_pose = labelled_canonical.mean(axis=0, keepdims=True)
    unique = np.unique(np.round(labelled_canonical, 1), axis=0)  # views share a pose
    return {
        "mean_pose_mpjpe": float(mpjpe(mean_pose, gt_canonical).mean()),
        "mean_pose_pa_mpjpe": float(pa_mpjpe(np.broadcast_to(mean_pose, gt_canonical.shape),
                                             gt_canonical).mean()),
        "oracle_mpjpe": float(nearest_pose_error(gt_canonical, unique).mean()),
    }


def pose_spread(poses: np.ndarray) -> float:
    """Mean distance (mm) of poses from their mean pose: a collapse monitor."""
    return float(np.linalg.norm(poses - poses.mean(axis=0), axis=-1).mean())


def pose_metrics(pred: dict[str, np.ndarray], gt_camera: np.ndarray) -> dict[str, float]:
    """Camera-frame and canonical MPJPE, PA-MPJPE, embedding cosine and pose spread ratio."""
    gt_canonical = to_canonical(gt_camera)
    return {
        "mpjpe": float(mpjpe(pred["pose_camera"], gt_camera).mean()),
        "canonical_mpjpe": float(mpjpe(pred["pose_canonical"], gt_canonical).mean()),
        "pa_mpjpe": float(pa_mpjpe(pred["pose_camera"], gt_camera).mean()),
        "embedding_cosine": mean_pairwise_cosine(torch.from_numpy(pred["embedding"])),
        "spread_ratio": pose_spread(pred["pose_canonical"]) / max(pose_spread(gt_canonical), 1e-9),
    }


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
