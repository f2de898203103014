"""Index of a dataset by (sequence, frame, camera): which rows show the same instant."""

from __future__ import annotations

import numpy as np


class MultiViewIndex:
    """Lookup ``(sequence, frame, camera) -> row`` and ``(sequence, frame) -> views``.

    Rows are sorted by (sequence, frame, camera), so the views of one instant are a
    contiguous run; a per-sequence table over that sequence's frame range finds the run.
    Memory grows with the number of rows and instants (not sequences x frames x cameras,
    which for Human3.6M with per-subject cameras would be hundreds of MB), and every lookup
    is O(1) plus the instant's few views. Rows with equal ``(sequence, frame)`` were
    captured at the same instant.
    """

    def __init__(self, sequence: np.ndarray, frame: np.ndarray, camera: np.ndarray) -> None:
        sequence, frame, camera = (np.asarray(a, dtype=np.int64) for a in (sequence, frame, camera))
        if len(sequence) and (frame.min() < 0 or sequence.min() < 0 or camera.min() < 0):
            raise ValueError("sequence, frame and camera codes must be non-negative")
        order = np.lexsort((camera, frame, sequence))
        seq, frm, cam = sequence[order], frame[order], camera[order]
        same = (np.diff(seq) == 0) & (np.diff(frm) == 0)
        if np.any(same & (np.diff(cam) == 0)):
            raise ValueError("two rows share the same (sequence, frame, camera)")
        self.sorted_rows, self.sorted_cameras = order, cam
        first = np.flatnonzero(np.concatenate([[True], ~same])) if len(seq) else np.zeros(0, int)
        self.starts = np.append(first, len(seq))  # instant i: sorted rows starts[i]:starts[i+1]
        self.num_sequences = int(sequence.max(initial=-1)) + 1
        inst_seq, inst_frame = seq[first], frm[first]
        self.lo = np.zeros(self.num_sequences, np.int64)
        span = np.zeros(self.num_sequences, np.int64)
        for s in np.unique(inst_seq):
            frames = inst_frame[inst_seq == s]
            self.lo[s], span[s] = frames[0], frames[-1] - frames[0] + 1
        self.offset = np.concatenate([[0], np.cumsum(span)])
        self.instant = np.full(int(self.offset[-1]), -1, np.int64)
        self.instant[self.offset[inst_seq] + inst_frame - self.lo[inst_seq]] = np.arange(len(first))
        self.num_cameras = int(camera.max(initial=-1)) + 1

    def _instant(self, sequence: int, frame: int) -> int:
        if not 0 <= sequence < self.num_sequences:
            return -1
        k = frame - self.lo[sequence]
        if not 0 <= k < self.offset[sequence + 1] - self.offset[sequence]:
            return -1
        return int(self.instant[self.offset[sequence] + k])

    def views(self, sequence: int, frame: int) -> np.ndarray:
        """Rows of every camera that saw this instant (in camera order)."""
        i = self._instant(sequence, frame)
        if i < 0:
            return np.zeros(0, np.int64)
        return self.sorted_rows[self.starts[i]:self.starts[i + 1]]

    def row(self, sequence: int, frame: int, camera: int) -> int:
        """The row of one view of one instant, or -1."""
        i = self._instant(sequence, frame)
        if i < 0:
            return -1
        lo, hi = self.starts[i], self.starts[i + 1]
        hit = np.flatnonzero(self.sorted_cameras[lo:hi] == camera)
        return int(self.sorted_rows[lo + hit[0]]) if len(hit) else -1

    def frames(self, sequence: int, min_views: int = 2) -> np.ndarray:
        """Frame numbers of a sequence seen by at least ``min_views`` cameras."""
        if not 0 <= sequence < self.num_sequences:
            return np.zeros(0, np.int64)
        table = self.instant[self.offset[sequence]:self.offset[sequence + 1]]
        present = table >= 0
        counts = np.zeros(len(table), np.int64)
        counts[present] = np.diff(self.starts)[table[present]]
        return np.flatnonzero(counts >= min_views) + self.lo[sequence]
