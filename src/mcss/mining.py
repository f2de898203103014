"""Temporal hard-negative mining for the multi-view triplet loss (DESIGN.md section 1).

A batch item is a crop ``(sequence s, time t, camera v)``. For an anchor ``i``:

- its *positives* are the other views of the same instant: same ``s``, same ``t``, different
  ``v`` (they show the same 3D pose);
- its *negatives* are crops of the same sequence at least ``min_gap`` away in time (and at most
  ``max_gap`` when set): same person, clothes, background and camera, but another pose, so the
  hardest useful negatives at no labelling cost. With ``other_sequences`` crops of any other
  sequence are negatives too. A crop of the same sequence closer than ``min_gap`` is never a
  negative (it may show nearly the same pose). With ``negative_camera="positive"`` a pair's
  negatives must come from the positive's camera: positive and negative then differ only in
  time, so background and viewpoint cannot tell them apart, only the pose can.

Every ordered positive pair ``(i, j)`` gets one negative (``"hardest"``, ``"semihard"``) or all
of them (``"all"``). Everything is computed with boolean masks on ``(N, N)`` matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mcss.distances import Distance, pairwise_distances

__all__ = ["STRATEGIES", "TemporalHardNegativeMiner", "Triplets", "mine_triplets"]

STRATEGIES: tuple[str, ...] = ("hardest", "semihard", "all")


@dataclass(frozen=True)
class Triplets:
    """Indices into the batch of ``(anchor, positive, negative)`` triples, as three ``(T,)``
    LongTensors of equal length, sorted by ``(anchor, positive, negative)``."""

    anchor: Tensor
    positive: Tensor
    negative: Tensor

    def __post_init__(self) -> None:
        if not (self.anchor.shape == self.positive.shape == self.negative.shape) or (
            self.anchor.dim() != 1
        ):
            raise ValueError(
                "anchor, positive and negative must be 1-D and of equal length; got "
                f"{tuple(self.anchor.shape)}, {tuple(self.positive.shape)}, "
                f"{tuple(self.negative.shape)}"
            )

    def __len__(self) -> int:
        return int(self.anchor.shape[0])

    @classmethod
    def empty(cls, device: torch.device | str | None = None) -> Triplets:
        """No triples."""
        e = torch.zeros(0, dtype=torch.long, device=device)
        return cls(e, e.clone(), e.clone())


NEGATIVE_CAMERAS: tuple[str, ...] = ("any", "positive")


def _check_options(strategy: str, min_gap: float, max_gap: float | None, margin: float,
                   negative_camera: str = "any") -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown mining strategy {strategy!r}; choose one of {STRATEGIES}")
    if negative_camera not in NEGATIVE_CAMERAS:
        raise ValueError(f"negative_camera must be one of {NEGATIVE_CAMERAS}; got "
                         f"{negative_camera!r}")
    if not min_gap >= 1:
        raise ValueError(
            f"min_gap must be >= 1 (frames of the same sequence closer than min_gap are never "
            f"negatives; below 1 an instant could be its own negative); got {min_gap}"
        )
    if max_gap is not None and not max_gap >= min_gap:
        raise ValueError(f"max_gap ({max_gap}) must be >= min_gap ({min_gap}) or None")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0; got {margin}")


def mine_triplets(
    dist: Tensor,
    sequence: Tensor,
    time: Tensor,
    camera: Tensor,
    *,
    min_gap: float,
    max_gap: float | None = None,
    strategy: str = "all",
    margin: float = 0.2,
    other_sequences: bool = False,
    negative_camera: str = "any",
) -> Triplets:
    """Mine ``(anchor, positive, negative)`` triples from a batch (rules in the module doc).

    ``dist`` is the ``(N, N)`` anchor-to-item distance matrix; ``sequence``, ``time`` (frames,
    int or float, in the unit of ``min_gap``/``max_gap``) and ``camera`` are ``(N,)``.

    Strategies, for each positive pair ``(i, j)``:

    - ``"hardest"``: the valid negative ``k`` with the smallest ``dist[i, k]`` (ties: smallest
      ``k``); pairs with no valid negative are dropped;
    - ``"semihard"``: the nearest valid ``k`` with ``dist[i, j] < dist[i, k] < dist[i, j] +
      margin`` (ties: smallest ``k``); pairs with none are dropped;
    - ``"all"`` (the default, as in training): every valid ``k``.
    """
    _check_options(strategy, min_gap, max_gap, margin, negative_camera)
    n = dist.shape[0] if dist.dim() == 2 else -1
    if dist.dim() != 2 or dist.shape[1] != n:
        raise ValueError(f"dist must be a square (N, N) matrix; got {tuple(dist.shape)}")
    for name, a in (("sequence", sequence), ("time", time), ("camera", camera)):
        if a.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match dist; got {tuple(a.shape)}")
    device = dist.device
    sequence, time, camera = (a.to(device) for a in (sequence, time, camera))

    same_seq = sequence[:, None] == sequence[None, :]
    positive = same_seq & (time[:, None] == time[None, :]) & (camera[:, None] != camera[None, :])
    if not time.is_floating_point():
        time = time.long()  # no wrap-around in the differences of narrow/unsigned ints
    gap = (time[:, None] - time[None, :]).abs()  # integer frames stay exact
    in_window = gap >= min_gap
    if max_gap is not None:
        in_window &= gap <= max_gap
    negative = same_seq & in_window
    if other_sequences:
        negative |= ~same_seq

    a, p = positive.nonzero(as_tuple=True)  # row-major: sorted by (anchor, positive)
    if len(a) == 0:
        return Triplets.empty(device)
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=device)

    candidates = negative[a]  # (P, N): valid negatives of each pair
    if negative_camera == "positive":
        candidates &= camera[None, :] == camera[p][:, None]
    if strategy == "hardest":
        k = torch.where(candidates, dist[a], inf).argmin(dim=1)  # first minimum: smallest k
        keep = candidates.any(dim=1)
        return Triplets(a[keep], p[keep], k[keep])
    if strategy == "all":
        pair, k = candidates.nonzero(as_tuple=True)  # sorted by (pair, k)
        return Triplets(a[pair], p[pair], k)

    # semihard
    d_an = dist[a]  # (P, N)
    d_ap = dist[a, p][:, None]
    candidates &= (d_an > d_ap) & (d_an < d_ap + margin)
    k = torch.where(candidates, d_an, inf).argmin(dim=1)
    keep = candidates.any(dim=1)
    return Triplets(a[keep], p[keep], k[keep])


class TemporalHardNegativeMiner:
    """The miner as an object holding its options (validated once), for the training loop.

    Called on ``(embeddings (N, D), sequence, time, camera)``, it computes ``distance``
    (Euclidean on L2-normalised embeddings by default) without gradient and returns the
    :class:`Triplets` of :func:`mine_triplets`.
    """

    def __init__(
        self,
        *,
        min_gap: float,
        max_gap: float | None = None,
        strategy: str = "all",
        margin: float = 0.2,
        other_sequences: bool = False,
        negative_camera: str = "any",
        distance: Distance = pairwise_distances,
    ) -> None:
        _check_options(strategy, min_gap, max_gap, margin, negative_camera)
        self.min_gap, self.max_gap = min_gap, max_gap
        self.strategy, self.margin = strategy, margin
        self.other_sequences, self.negative_camera = other_sequences, negative_camera
        self.distance = distance

    def __call__(
        self, embeddings: Tensor, sequence: Tensor, time: Tensor, camera: Tensor
    ) -> Triplets:
        with torch.no_grad():
            dist = self.distance(embeddings.detach())
        return mine_triplets(
            dist,
            sequence,
            time,
            camera,
            min_gap=self.min_gap,
            max_gap=self.max_gap,
            strategy=self.strategy,
            margin=self.margin,
            other_sequences=self.other_sequences,
            negative_camera=self.negative_camera,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_gap={self.min_gap}, max_gap={self.max_gap}, "
            f"strategy={self.strategy!r}, margin={self.margin}, "
            f"other_sequences={self.other_sequences}, negative_camera={self.negative_camera!r})"
        )
