"""Batch samplers: multi-view unlabelled batches and labelled batches.

Every batch is a pure function of ``(seed, step)``: no sampler state to save, exact resume,
and the same batches whichever DataLoader worker builds them.
"""

from __future__ import annotations

import numpy as np

from mcss.data.multiview import MultiViewIndex


def step_rng(seed: int, step: int, stream: int) -> np.random.Generator:
    """The generator of one step and one purpose (``stream``), independent of all others."""
    return np.random.default_rng([seed, step, stream])


def spaced_instants(
    frames: np.ndarray, k: int, min_gap: int, max_gap: int | None, rng: np.random.Generator
) -> np.ndarray | None:
    """``k`` frames pairwise at least ``min_gap`` apart (all within a window of ``max_gap``
    when given), chosen at random; None when the sequence cannot provide them."""
    if max_gap is not None:
        start = rng.choice(frames)
        frames = frames[(frames >= start) & (frames <= start + max_gap)]
    chosen: list[int] = []
    for f in rng.permutation(frames):
        if all(abs(int(f) - c) >= min_gap for c in chosen):
            chosen.append(int(f))
            if len(chosen) == k:
                return np.sort(np.array(chosen))
    return None


class MultiViewBatchSampler:
    """B sequences x K instants (pairwise >= ``min_gap`` frames apart) x V cameras.

    Rows come out grouped: sequence-major, then instant, then view, so the batch has shape
    ``(B, K, V)`` when reshaped. Only instants seen by at least V cameras are used.
    """

    def __init__(
        self,
        index: MultiViewIndex,
        sequences: np.ndarray,
        n_sequences: int,
        n_instants: int,
        n_views: int,
        min_gap: int,
        max_gap: int | None = None,
        seed: int = 0,
    ) -> None:
        self.index = index
        self.b, self.k, self.v = n_sequences, n_instants, n_views
        self.min_gap, self.max_gap, self.seed = min_gap, max_gap, seed
        self.frames = {int(s): index.frames(int(s), min_views=n_views) for s in sequences}
        self.sequences = np.array([s for s, f in self.frames.items()
                                   if spaced_instants(f, n_instants, min_gap, None,
                                                      np.random.default_rng(0)) is not None])
        if len(self.sequences) < n_sequences:
            raise ValueError(
                f"only {len(self.sequences)} sequences have {n_instants} instants "
                f"{min_gap} frames apart seen by {n_views} cameras; {n_sequences} are needed "
                "per batch (lower n_sequences, n_instants, n_views or min_gap)"
            )

    @property
    def batch_size(self) -> int:
        return self.b * self.k * self.v

    def batch(self, step: int) -> np.ndarray:
        """Row indices of the unlabelled batch of ``step``: ``(B*K*V,)``."""
        rng = step_rng(self.seed, step, 1)
        rows: list[np.ndarray] = []
        for seq in rng.choice(self.sequences, size=self.b, replace=False):
            instants = None
            for _ in range(20):  # a max_gap window can be too short: draw another
                instants = spaced_instants(self.frames[int(seq)], self.k, self.min_gap,
                                           self.max_gap, rng)
                if instants is not None:
                    break
            if instants is None:  # no window works: drop the max_gap constraint
                instants = spaced_instants(self.frames[int(seq)], self.k, self.min_gap,
                                           None, rng)
            for frame in instants:
                views = self.index.views(int(seq), int(frame))
                rows.append(rng.choice(views, size=self.v, replace=False))
        return np.concatenate(rows)


class LabelledSampler:
    """Uniformly random labelled rows, ``batch_size`` per step."""

    def __init__(self, rows: np.ndarray, batch_size: int, seed: int = 0) -> None:
        if len(rows) == 0:
            raise ValueError("no labelled frames to train on")
        self.rows, self.batch_size, self.seed = np.asarray(rows), batch_size, seed

    def batch(self, step: int) -> np.ndarray:
        rng = step_rng(self.seed, step, 0)
        return self.rows[rng.integers(0, len(self.rows), self.batch_size)]


def shard(n_groups: int, group_size: int, rank: int, world_size: int) -> slice:
    """The rows of rank ``rank`` in a batch of ``n_groups`` whole groups of ``group_size``
    rows: an equal, contiguous share, so the ranks' shares in rank order are the batch."""
    if n_groups % world_size:
        raise ValueError(f"{n_groups} groups cannot be shared equally by {world_size} processes")
    per = n_groups // world_size * group_size
    return slice(rank * per, (rank + 1) * per)
