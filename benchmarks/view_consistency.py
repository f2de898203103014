"""Does the multi-view term learn its own objective? Cross-view retrieval inside each subject.

For every subject of the dataset separately, each trained run embeds that subject's crops;
queries come from one camera and the gallery is the same subject's crops from the other
cameras. ``same_instant@k`` is the share of queries whose top ``k`` hold the same instant
seen by another camera: exactly what the triplet term's positives ask for (chance: about
``k`` in the number of the subject's instants). It is measured on the labelled actor, on the
unlabelled actors the term trains on, on the held-out validation actor and on the test actors,
so a term that learns view invariance on its own actors but not on new ones, or not at all,
shows which. ``hit@1/75mm`` (a top-1 pose within 75 mm PA-MPJPE) is reported beside it.

It also takes a census of the positive pairs of the run's own training batches (evaluation
mode, ``--census-batches`` batches): the share whose nearest valid temporal negative is nearer
than the positive (a violation), of those with a negative only inside the margin (what
semi-hard mining trains on) and of those already satisfied. Semi-hard mining drops the first
kind, the pairs that fail.

    python benchmarks/view_consistency.py --data runs/demo/data \\
        --runs runs/sweep/baseline-valS6 runs/sweep/mcss-lam0.001-valS6
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from machine import cpu_model


def run_labels(runs: list[Path]) -> list[str]:
    """A run's folder name, or ``parent/name`` for all when two runs share a name (the same
    variant trained on two datasets), so no result overwrites another."""
    names = [run.name for run in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{run.parent.name}/{run.name}" for run in runs]


def subject_retrieval(runs: list[Path], data: Path, max_queries: int,
                      census_batches: int) -> dict[str, Any]:
    """``{run name: {subject: retrieval results}}`` of within-subject cross-view retrieval."""
    from mcss.data.format import Dataset
    from mcss.evaluate import labelled_poses, load_trained, predict
    from mcss.retrieval import cross_view_retrieval

    ds = Dataset(data)
    results: dict[str, Any] = {}
    for run, label in zip(runs, run_labels(runs), strict=True):
        model, cfg, _ = load_trained(run, device="auto")
        per_subject = {}
        for subject in ds.meta["subjects"]:
            rows, poses = labelled_poses(ds, ds.rows_of([subject]))
            emb = predict(model, ds.images[rows])["embedding"]
            per_subject[subject] = cross_view_retrieval(
                emb, poses, ds.viewpoint_id[rows], ds.sequence_id[rows], ds.frame[rows],
                max_queries=max_queries, seed=0)
        results[label] = {"lam": cfg.lam, "strategy": cfg.strategy,
                          "negative_camera": cfg.negative_camera,
                          "val_subject": cfg.val_subject, "subjects": per_subject,
                          "census": pair_census(model, cfg, ds, census_batches)}
    return results


def pair_census(model: Any, cfg: Any, ds: Any, batches: int) -> dict[str, float]:
    """Shares of positive pairs by their nearest valid negative: violating / semi-hard / easy."""
    import dataclasses

    import torch

    from mcss.data.training import TrainBatches, make_split
    from mcss.distances import pairwise_distances
    from mcss.mining import mine_triplets

    cfg = dataclasses.replace(cfg, forward_unlabelled=True)  # a baseline gets the batches too
    source = TrainBatches(ds, make_split(ds, cfg), cfg)
    device = next(model.parameters()).device
    counts = torch.zeros(3)
    for step in range(0, batches * 10, 10):
        b = source[step]
        with torch.no_grad():
            dist = pairwise_distances(model(b["unlabelled_images"].to(device)).embedding).cpu()
        keys = b["sequence"], b["time"], b["camera"]
        hardest = mine_triplets(dist, *keys, min_gap=cfg.min_gap, max_gap=cfg.max_gap,
                                negative_camera=cfg.negative_camera, strategy="hardest")
        d_ap = dist[hardest.anchor, hardest.positive]
        d_an = dist[hardest.anchor, hardest.negative]
        counts += torch.stack([(d_an < d_ap).sum(), ((d_an >= d_ap) & (d_an < d_ap + cfg.margin))
                               .sum(), (d_an >= d_ap + cfg.margin).sum()]).float()
    share = (counts / counts.sum()).tolist()
    return {"violating": share[0], "semihard": share[1], "easy": share[2],
            "pairs": int(counts.sum())}


def markdown(results: dict[str, Any]) -> str:
    subjects = list(next(iter(results.values()))["subjects"])
    head = "| run | " + " | ".join(subjects) + " |\n|---|" + "---:|" * len(subjects)

    def cell(r: dict) -> str:
        return f"{100 * r['same_instant@1']:.1f}% / {100 * r['hit@1/75mm']:.0f}%"

    rows = [f"| {name} | " + " | ".join(cell(r["subjects"][s]) for s in subjects) + " |"
            for name, r in results.items()]
    census = "\n".join(
        f"| {name} | {100 * c['violating']:.0f}% | {100 * c['semihard']:.0f}% | "
        f"{100 * c['easy']:.0f}% | {c['pairs']} |"
        for name, r in results.items() for c in [r["census"]])
    return ("Within-subject cross-view retrieval: same instant at top 1 / pose within 75 mm at "
            "top 1.\n\n" + head + "\n" + "\n".join(rows)
            + "\n\nPositive pairs of the training batches by their nearest valid negative:\n\n"
            "| run | nearer than the positive | inside the margin | beyond the margin | pairs |\n"
            "|---|---:|---:|---:|---:|\n" + census)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="trained run folders")
    ap.add_argument("--max-queries", type=int, default=1000)
    ap.add_argument("--census-batches", type=int, default=20)
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results"
                    / "view_consistency.json")
    args = ap.parse_args()
    import torch

    results = {"runs": subject_retrieval(args.runs, args.data, args.max_queries,
                                              args.census_batches),
               "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
               "command": "python benchmarks/view_consistency.py " + " ".join(sys.argv[1:])}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results["runs"]))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
