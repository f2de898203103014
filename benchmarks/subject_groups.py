"""Canonical predictions of a trained run on its validation subject and on the test subjects,
and the command line of the benchmarks that measure them (left_right.py, bone_lengths.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from machine import runs_arguments, write_runs_result


def group_predictions(run: Path, data: Path, max_frames: int) -> tuple[Any, Any, dict[str, Any]]:
    """``(dataset, config, {"validation" | "test": (predicted, true)})``: canonical poses
    ``(N, 17, 3)`` of up to ``max_frames`` crops per group, drawn with seed 0."""
    from mcss.data.format import Dataset
    from mcss.evaluate import labelled_poses, load_trained, predict
    from mcss.geometry import to_canonical

    ds = Dataset(data)
    model, cfg, _ = load_trained(run, device="auto")
    groups = {"validation": [cfg.val_subject], "test": list(ds.meta["splits"]["test"])}
    poses = {}
    for group, subjects in groups.items():
        rows, gt = labelled_poses(ds, ds.rows_of(subjects))
        if len(rows) > max_frames:
            keep = np.sort(np.random.default_rng(0).choice(len(rows), max_frames, replace=False))
            rows, gt = rows[keep], gt[keep]
        poses[group] = (predict(model, ds.images[rows])["pose_canonical"], to_canonical(gt))
    return ds, cfg, poses


Cells = Callable[[dict[str, Any], dict[str, Any]], list[str]]


def group_table(results: dict[str, Any], group: str, headers: list[str], cells: Cells) -> str:
    """A markdown table of one group, a row per run: its name, then ``cells(run, measures)``."""
    rows = ["| run | " + " | ".join(headers) + " |", "|---" + "|---:" * len(headers) + "|"]
    rows += [f"| {name} | " + " | ".join(cells(r, r[group])) + " |"
             for name, r in results.items()]
    return f"{group} subjects, canonical frame, mm\n\n" + "\n".join(rows)


def main_over_runs(doc: str, results_name: str,
                   measure: Callable[[Path, Path, int], dict[str, Any]],
                   headers: list[str], cells: Cells) -> None:
    """Measure every ``--runs`` folder, print the validation and test tables, write JSON."""
    args = runs_arguments(doc, results_name, 1000, "crops per group of subjects")
    results = {str(run): measure(run, args.data, args.max_frames) for run in args.runs}
    for group in ("validation", "test"):
        print(group_table(results, group, headers, cells))
    write_runs_result(args.results, results)
