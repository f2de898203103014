"""Is the test actors' pose in the embedding, and does a head trained on S1 read it?

For each trained run, the test crops (S9, S11) and the run's labelled crops (S1) are embedded,
and the canonical pose is read from them by three read-outs, each fitted on three sets of
labelled crops (mean over frames, canonical frame, mm):

- read-outs: ``linear`` (ridge regression), ``mlp`` (a fresh head shaped like the network's,
  trained on the frozen inputs) and ``nearest`` (the label of the nearest fitted crop);
- fitted on ``labelled`` (the run's own labels, S1 for the S1-only runs: what the network's
  head, ``head``, was trained on; at most ``--max-fit`` of them, seeded), on ``other_actor``
  (S9's labels scored on S11 and back: a read-out learnt on one unseen actor) and on
  ``other_takes`` (the test actors' own labels, two-fold by take: fitted on half of the takes,
  scored on the others). The last two are oracles, never results.

The same read-outs of the backbone feature (before the embedding layer) say whether the
embedding layer throws pose away. If ``other_takes`` reads the test actors' pose far better
than ``labelled`` does, the pose is in their embedding but not where S1's poses put it
(a read-out problem); if it is no better, the pose is not in the embedding (an embedding problem).

    python benchmarks/embedding_probe.py --data runs/extra32/data \\
        --runs runs/rot6k/baseline-s0 runs/rot6k/mcss-lam0.03-all-views4-s0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from machine import runs_parser, write_runs_result
from view_consistency import run_labels

RIDGE = 1e-2  # the ridge penalty, relative to the mean eigenvalue of the standardised Gram
SPACES = ("embedding", "feature")
READOUTS = ("linear", "mlp", "nearest")


def ridge_predict(x_fit: np.ndarray, y_fit: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A ridge regression ``y ~ x`` on standardised inputs, fitted and applied to ``x``."""
    mean, scale = x_fit.mean(axis=0), x_fit.std(axis=0) + 1e-8

    def design(v: np.ndarray) -> np.ndarray:
        return np.column_stack([(v - mean) / scale, np.ones(len(v))])

    z = design(x_fit)
    gram = z.T @ z
    penalty = RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram))
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    return design(x) @ np.linalg.solve(gram + penalty, z.T @ y_fit)


def mlp_predict(x_fit: np.ndarray, y_fit: np.ndarray, x: np.ndarray, hidden: int,
                steps: int = 1500) -> np.ndarray:
    """A fresh head shaped like the network's (``mcss.model._mlp``), L1 on metres, full batch."""
    import torch

    from mcss.model import _mlp

    torch.manual_seed(0)
    mean, scale = x_fit.mean(axis=0), x_fit.std(axis=0) + 1e-8
    inputs = torch.from_numpy((x_fit - mean) / scale).float()
    target = torch.from_numpy(y_fit / 1000.0).float()
    head = _mlp(inputs.shape[1], hidden, target.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.l1_loss(head(inputs), target).backward()
        opt.step()
    with torch.no_grad():
        return head(torch.from_numpy((x - mean) / scale).float()).double().numpy() * 1000.0


def nearest_predict(x_fit: np.ndarray, y_fit: np.ndarray, x: np.ndarray) -> np.ndarray:
    import torch

    dist = torch.cdist(torch.from_numpy(x).float(), torch.from_numpy(x_fit).float())
    return y_fit[dist.argmin(dim=1).numpy()]


def readout_error(kind: str, x_fit: np.ndarray, y_fit: np.ndarray, x: np.ndarray,
                  y: np.ndarray, hidden: int) -> float:
    """Mean per-joint error (mm) on ``(x, y)`` of a read-out fitted on ``(x_fit, y_fit)``."""
    flat = y_fit.reshape(len(y_fit), -1)
    if kind == "linear":
        pred = ridge_predict(x_fit, flat, x)
    elif kind == "mlp":
        pred = mlp_predict(x_fit, flat, x, hidden)
    else:
        pred = nearest_predict(x_fit, flat, x)
    return float(np.linalg.norm(pred.reshape(y.shape) - y, axis=-1).mean())


def crossed(kind: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, hidden: int) -> float:
    """Fitted on one of two groups and scored on the other, both ways: frame-weighted mean."""
    a = groups == groups[0]
    return float((readout_error(kind, x[a], y[a], x[~a], y[~a], hidden) * np.sum(~a)
                  + readout_error(kind, x[~a], y[~a], x[a], y[a], hidden) * np.sum(a)) / len(y))


def encode(model: Any, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """Backbone features, embeddings and the head's canonical poses, evaluation mode."""
    import torch

    from mcss.augment import to_tensor
    from mcss.geometry import to_canonical

    out: dict[str, list[np.ndarray]] = {"feature": [], "embedding": [], "head": []}
    # one forward pass per batch: the backbone's output is caught on its way to the heads
    hook = model.backbone.register_forward_hook(
        lambda _module, _inputs, feature: out["feature"].append(feature.double().numpy()))
    with torch.no_grad():
        for lo in range(0, len(images), batch):
            pred = model(to_tensor(np.asarray(images[lo:lo + batch])))
            out["embedding"].append(pred.embedding.double().numpy())
            out["head"].append(pred.pose_camera.double().numpy())
    hook.remove()
    joined = {k: np.concatenate(v) for k, v in out.items()}
    joined["head"] = to_canonical(joined["head"])
    return joined


def probe_run(run: Path, ds: Any, max_fit: int) -> dict[str, Any]:
    from mcss.data.training import make_split
    from mcss.evaluate import labelled_poses, load_trained
    from mcss.geometry import to_canonical

    model, cfg, folder = load_trained(run, device="cpu")
    test_rows, test_gt = labelled_poses(ds, ds.split_rows("test"), require_flag=True)
    fit_rows = make_split(ds, cfg).labelled
    if len(fit_rows) > max_fit:
        fit_rows = np.sort(np.random.default_rng(0).choice(fit_rows, max_fit, replace=False))
    fit_rows, fit_gt = labelled_poses(ds, fit_rows)
    test_y, fit_y = to_canonical(test_gt), to_canonical(fit_gt)
    test, fit = encode(model, ds.images[test_rows]), encode(model, ds.images[fit_rows])
    takes, subjects = ds.sequence_id[test_rows] % 2, ds.subjects[test_rows]
    result: dict[str, Any] = {
        "checkpoint": str(folder), "lam": cfg.lam, "labelled": cfg.labelled,
        "frames": len(test_rows), "fit_frames": len(fit_rows),
        "head": float(np.linalg.norm(test["head"] - test_y, axis=-1).mean()),
        "mean_pose": float(np.linalg.norm(test_y - fit_y.mean(axis=0), axis=-1).mean())}
    for space in SPACES:
        x, x_fit = test[space], fit[space]
        result[space] = {kind: {
            "labelled": readout_error(kind, x_fit, fit_y, x, test_y, cfg.hidden_dim),
            "other_actor": crossed(kind, x, test_y, subjects, cfg.hidden_dim),
            "other_takes": crossed(kind, x, test_y, takes, cfg.hidden_dim),
        } for kind in READOUTS}
    return result


def markdown(results: dict[str, Any]) -> str:
    lines = ["| run | labels | input | read-out | head | fitted on its labels "
             "| on the other test actor | on the other takes |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        actors = r["labelled"].split(",")
        labels = actors[0] if len(actors) == 1 else f"{len(actors)} actors"
        for space in SPACES:
            for kind in READOUTS:
                e = r[space][kind]
                lines.append(f"| {name} | {labels} | {space} | {kind} | {r['head']:.1f} | "
                             f"{e['labelled']:.1f} | {e['other_actor']:.1f} | "
                             f"{e['other_takes']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = runs_parser(__doc__, "embedding_probe.json")
    ap.add_argument("--max-fit", type=int, default=4000,
                    help="at most this many of a run's labelled crops to fit on (seeded)")
    args = ap.parse_args()
    from mcss.data.format import Dataset

    ds = Dataset(args.data)
    runs = {label: probe_run(run, ds, args.max_fit)
            for run, label in zip(args.runs, run_labels(args.runs), strict=True)}
    print(markdown(runs))
    write_runs_result(args.results, runs, ridge=RIDGE)


if __name__ == "__main__":
    main()
