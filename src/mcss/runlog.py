"""What a training run reports and how it stops: the CSV/TensorBoard log, the progress
bar, the validation line, and the SIGINT/SIGTERM handler that turns a signal into a clean stop.
"""

from __future__ import annotations

import csv
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mcss.evaluate import collapse_warnings


class RunLog:
    """Metrics to ``metrics.csv`` (one row per event) and TensorBoard (``tb/``)."""

    def __init__(self, run: Path) -> None:
        self.path = run / "metrics.csv"
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run / "tb"))
        except ImportError:  # TensorBoard is optional; the CSV is always written
            self.tb = None

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (a resumed run logs those steps again)."""
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
        with self.path.open("w", newline="") as f:
            csv.writer(f).writerows(kept)

    def write(self, step: int, kind: str, values: dict[str, float]) -> None:
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", "kind", "name", "value"])
            writer.writerows([step, kind, k, f"{v:.6g}"] for k, v in values.items())
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"{kind}/{k}", v, step)
            self.tb.flush()


class StopRequest:
    """Turns SIGINT/SIGTERM into a request honoured between steps, so the run saves a
    consistent checkpoint (never one taken in the middle of an optimizer step) and exits."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._request)
        return self

    def _request(self, signum: int, _frame: object) -> None:
        self.signal = signum

    def __exit__(self, *_: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def val_line(step: int, m: dict[str, float]) -> str:
    if not np.isfinite(m["mpjpe"]):
        return f"val step {step}: no finite validation labels ({m['skipped']} skipped)"
    warnings = "".join(f" | WARNING {w}" for w in collapse_warnings(m))
    return _val_numbers(step, m) + warnings


def _val_numbers(step: int, m: dict[str, float]) -> str:
    line = (
        f"val step {step}: MPJPE {m['mpjpe']:.1f} mm (canonical {m['canonical_mpjpe']:.1f}, "
        f"PA {m['pa_mpjpe']:.1f}) | mean pose {m['mean_pose_mpjpe']:.1f}, oracle "
        f"{m['oracle_mpjpe']:.1f} | cosine {m['embedding_cosine']:.3f}, spread "
        f"{100 * m['spread_ratio']:.0f}% of GT"
    )
    if "left_right_agreement" in m:
        line += f", left/right {m['left_right_agreement']:.2f}"
    if "fit_canonical_mpjpe" in m:
        line += (f" | labelled fit: canonical {m['fit_canonical_mpjpe']:.1f}, spread "
                 f"{100 * m['fit_spread_ratio']:.0f}%")
    return line


def progress_bar(total: int, start: int, enabled: bool):  # noqa: ANN202
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, disable=not enabled, unit="step",
                dynamic_ncols=True, desc="train")
