"""Index of a dataset by (sequence, frame, camera): which rows show the same instant."""

from __future__ import annotations

import numpy as np


class MultiViewIndex:
    """Dense lookup table ``rows[sequence, frame, camera] -> row`` (-1 where absent).

    Built once from the dataset's columns; every lookup is O(1). Frames are the take's own
    frame numbers: rows with equal ``(sequence, frame)`` were captured at the same instant.
    """

    def __init__(self, sequence: np.ndarray, frame: np.ndarray, camera: np.ndarray) -> None:
        sequence, frame, camera = (np.asarray(a, dtype=np.int64) for a in (sequence, frame, camera))
        if len(sequence) and (frame.min() < 0 or sequence.min() < 0 or camera.min() < 0):
            raise ValueError("sequence, frame and camera codes must be non-negative")
        shape = (
            int(sequence.max(initial=-1)) + 1,
            int(frame.max(initial=-1)) + 1,
            int(camera.max(initial=-1)) + 1,
        )
        self.rows = np.full(shape, -1, dtype=np.int64)
        self.rows[sequence, frame, camera] = np.arange(len(sequence))
        if np.count_nonzero(self.rows >= 0) != len(sequence):
            raise ValueError("two rows share the same (sequence, frame, camera)")

    @property
    def num_sequences(self) -> int:
        return self.rows.shape[0]

    def row(self, sequence: int, frame: int, camera: int) -> int:
        """The row of one view of one instant, or -1."""
        return int(self.rows[sequence, frame, camera])

    def views(self, sequence: int, frame: int) -> np.ndarray:
        """Rows of every camera that saw this instant."""
        r = self.rows[sequence, frame]
        return r[r >= 0]

    def frames(self, sequence: int, min_views: int = 2) -> np.ndarray:
        """Frame numbers of a sequence seen by at least ``min_views`` cameras."""
        return np.flatnonzero((self.rows[sequence] >= 0).sum(axis=1) >= min_views)
