"""Distances between embeddings, and an embedding-collapse monitor.

The metric loss of MCSS (DESIGN.md section 1) compares *L2-normalised* embeddings with the
Euclidean distance, so by default every function here normalises first. Distances are one
small composable piece, like pytorch-metric-learning's: the miner (``mcss.mining``) and the
loss (``mcss.losses``) both take a distance function, ``pairwise_distances`` by default.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Distance", "mean_pairwise_cosine", "pairwise_distances", "safe_sqrt"]

Distance = Callable[[Tensor], Tensor]
"""A distance function: embeddings ``(N, D)`` -> pairwise distance matrix ``(N, N)``."""


def safe_sqrt(x: Tensor, eps: float | None = None) -> Tensor:
    """``sqrt(x)`` for ``x >= 0``, exactly 0 (with a zero gradient) where ``x <= eps``.

    The plain square root has an infinite gradient at 0, which turns into NaN as soon as two
    embeddings coincide (an anchor and its positive, the very thing the loss asks for).
    ``eps`` defaults to the machine epsilon of ``x``'s dtype: squared distances computed from
    a Gram matrix of unit vectors are only accurate to about that, so smaller values are
    noise, and flooring them keeps the gradient bounded as well as finite.
    """
    if eps is None:
        eps = torch.finfo(x.dtype).eps if x.is_floating_point() else 0.0
    return torch.where(x > eps, x.clamp_min(eps).sqrt(), torch.zeros_like(x))


def pairwise_distances(
    x: Tensor, y: Tensor | None = None, *, normalize: bool = True, squared: bool = False
) -> Tensor:
    """Euclidean distances between the rows of ``x`` ``(N, D)`` and of ``y`` ``(M, D)``.

    ``y=None`` means ``y = x`` (and the diagonal is exactly 0). With ``normalize`` the rows are
    L2-normalised first, so distances lie in ``[0, 2]``. Computed from the Gram matrix (one
    matmul, O(N*M) memory) and made safe with :func:`safe_sqrt`; ``squared`` skips the root.
    Returns ``(N, M)``.
    """
    if x.dim() != 2 or (y is not None and (y.dim() != 2 or y.shape[1] != x.shape[1])):
        raise ValueError(
            f"expected x (N, D) and y (M, D); got {tuple(x.shape)} and "
            f"{None if y is None else tuple(y.shape)}"
        )
    if normalize:
        x = F.normalize(x, dim=1)
        y = None if y is None else F.normalize(y, dim=1)
    other = x if y is None else y
    x2 = x.pow(2).sum(1)
    y2 = x2 if y is None else other.pow(2).sum(1)
    d2 = (x2[:, None] + y2[None, :] - 2.0 * (x @ other.T)).clamp_min(0.0)
    if y is None:
        eye = torch.eye(len(x), dtype=torch.bool, device=x.device)
        d2 = d2.masked_fill(eye, 0.0)
    return d2 if squared else safe_sqrt(d2)


@torch.no_grad()
def mean_pairwise_cosine(x: Tensor) -> float:
    """Mean cosine similarity over all off-diagonal pairs of rows of ``x`` ``(N, D)``.

    A collapse monitor (DESIGN.md section 1, "Watch for embedding collapse"): close to 1 when
    the triplet loss has mapped every crop to nearly the same point, about 0 for well-spread
    embeddings. Zero rows count as cosine 0. Needs ``N >= 2``.
    """
    if x.dim() != 2 or len(x) < 2:
        raise ValueError(f"mean_pairwise_cosine needs (N >= 2, D) embeddings; got {tuple(x.shape)}")
    n = len(x)
    u = F.normalize(x.detach().cpu().double(), dim=1)  # a monitor: exact, off-graph
    s = u.sum(0)
    # sum of all pairwise cosines = |sum u|^2; subtract the diagonal (|u_i|^2).
    off = s.dot(s) - u.pow(2).sum()
    return float(off / (n * (n - 1)))
