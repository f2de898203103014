"""Losses of MCSS (DESIGN.md section 1): ``L = L_pose(labelled) + lambda * L_triplet(unlabelled)``.

- :func:`pose_loss`: a mean per-joint error on root-relative joints (L1, L2 or MPJPE).
- :func:`triplet_margin_loss`: ``mean(max(0, d(a, p) - d(a, n) + margin))`` over given triples,
  with ``d`` the Euclidean distance between L2-normalised embeddings.
- :class:`TripletLoss`: the miner (``mcss.mining``) and the triplet loss composed, the piece the
  training loop calls on an unlabelled multi-view batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mcss.distances import Distance, pairwise_distances, safe_sqrt
from mcss.mining import TemporalHardNegativeMiner, Triplets

__all__ = ["POSE_LOSSES", "TripletLoss", "pose_loss", "triplet_margin_loss"]

POSE_LOSSES: tuple[str, ...] = ("l1", "l2", "mpjpe")


def pose_loss(
    pred: Tensor, target: Tensor, kind: str = "l1", weights: Tensor | None = None
) -> Tensor:
    """Pose error between ``pred`` and ``target`` ``(B, J, 3)`` (any unit; J = 17 in mcss).

    ``kind``: ``"l1"`` mean absolute error over all coordinates, ``"l2"`` mean squared error
    over all coordinates, ``"mpjpe"`` mean Euclidean distance per joint. ``weights`` ``(B,)``
    (>= 0) weights the rows: the result is the weighted mean of the per-row errors, and a row of
    weight 0 is ignored entirely (its target may even be NaN). All weights 0 gives 0.
    """
    if kind not in POSE_LOSSES:
        raise ValueError(f"unknown pose loss {kind!r}; choose one of {POSE_LOSSES}")
    if pred.shape != target.shape or pred.dim() != 3 or pred.shape[-1] != 3:
        raise ValueError(
            f"pred and target must both be (B, J, 3); got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if weights is not None:
        if weights.shape != (pred.shape[0],):
            raise ValueError(f"weights must be ({pred.shape[0]},); got {tuple(weights.shape)}")
        weights = weights.to(pred)
        # Ignored rows: compare pred with itself so that NaN targets cannot leak into grads.
        target = torch.where((weights > 0)[:, None, None], target, pred.detach())
    diff = pred - target
    if kind == "l1":
        per_row = diff.abs().mean(dim=(1, 2))
    elif kind == "l2":
        per_row = diff.pow(2).mean(dim=(1, 2))
    else:
        per_row = safe_sqrt(diff.pow(2).sum(-1)).mean(dim=1)
    if weights is None:
        return per_row.mean()
    total = weights.sum()
    return (weights * per_row).sum() / total.clamp_min(torch.finfo(total.dtype).tiny)


def triplet_margin_loss(
    embeddings: Tensor,
    triplets: Triplets,
    margin: float = 0.2,
    *,
    distance: Distance = pairwise_distances,
) -> tuple[Tensor, dict[str, float]]:
    """``mean(max(0, d(a, p) - d(a, n) + margin))`` over ``triplets`` of ``embeddings (N, D)``.

    ``distance`` maps the embeddings to an ``(N, N)`` matrix; by default the (non-squared)
    Euclidean distance between L2-normalised embeddings, as in DESIGN.md section 1. No triples
    give a loss of 0 that is still connected to ``embeddings`` (``backward`` works, gradients
    are 0). Returns ``(loss, stats)``, stats as floats: ``num_triplets``, ``active_fraction``
    (share of triples with a positive loss), ``mean_pos_dist``, ``mean_neg_dist`` (0 when there
    are no triples).
    """
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0; got {margin}")
    if len(triplets) == 0:
        loss = embeddings.sum() * 0.0
        stats = dict(num_triplets=0.0, active_fraction=0.0, mean_pos_dist=0.0, mean_neg_dist=0.0)
        return loss, stats
    dist = distance(embeddings)
    d_ap = dist[triplets.anchor, triplets.positive]
    d_an = dist[triplets.anchor, triplets.negative]
    per_triplet = (d_ap - d_an + margin).clamp_min(0.0)
    loss = per_triplet.mean()
    with torch.no_grad():
        summary = torch.stack(
            [(per_triplet > 0).float().mean(), d_ap.float().mean(), d_an.float().mean()]
        ).tolist()  # one device sync for all three
    stats = dict(
        num_triplets=float(len(triplets)),
        active_fraction=summary[0],
        mean_pos_dist=summary[1],
        mean_neg_dist=summary[2],
    )
    return loss, stats


class TripletLoss:
    """Miner + triplet margin loss: ``(embeddings, sequence, time, camera) -> (loss, stats)``.

    ``margin`` and ``distance`` default to the miner's, so that semi-hard mining and the loss
    agree on what "within the margin" means.
    """

    def __init__(
        self,
        miner: TemporalHardNegativeMiner,
        margin: float | None = None,
        distance: Distance | None = None,
    ) -> None:
        self.miner = miner
        self.margin = miner.margin if margin is None else margin
        self.distance = miner.distance if distance is None else distance
        if not self.margin >= 0:
            raise ValueError(f"margin must be >= 0; got {self.margin}")

    def __call__(
        self, embeddings: Tensor, sequence: Tensor, time: Tensor, camera: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        triplets = self.miner(embeddings, sequence, time, camera)
        return triplet_margin_loss(embeddings, triplets, self.margin, distance=self.distance)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(miner={self.miner!r}, margin={self.margin})"
