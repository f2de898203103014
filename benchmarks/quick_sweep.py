"""Tune on the validation subject: variants of the ``quick`` training preset, trained one
after another on the quick synthetic dataset, compared on S8 (never on S9/S11).

Each variant is ``mcss train --preset quick --set ...``; its last validation line (canonical,
camera-frame and PA-MPJPE, the collapse monitors, the two sanity references) goes into the
results. A variant whose run folder already has ``final_metrics.json`` is reused, so a sweep
can be stopped and continued, and new variants added to a finished one.

    python benchmarks/quick_sweep.py --data runs/demo/data --out runs/sweep
    python benchmarks/quick_sweep.py --data runs/demo/data --out runs/sweep --variants mcss baseline
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from long_schedule import PINNED, logged_rows, training_tail
from machine import cpu_model

# name -> --set items on top of the quick preset (1000 steps). lam and the channel shuffle are
# explicit, so a variant keeps its meaning when the defaults change (they did in session 4).
# the session-7 defaults (every valid triplet at lam 0.03) with S6 held out for validation
ALL_S6 = ["lam=0.03", "strategy=all", "channel_shuffle=true", "val_subject=S6"]
# session 16: every training frame labelled, 1200 steps; first run as `--preset full --set
# steps=1200` (the quick preset's training; only validation and checkpoints differ) with the
# session-7 default strategy (no triplets at lam = 0)
LABELS100 = ["lam=0", "labelled=100%", "steps=1200", "val_every=300", "ckpt_every=600",
             "strategy=all", "channel_shuffle=true"]
VARIANTS: dict[str, list[str]] = {
    "baseline": ["lam=0", "channel_shuffle=true"],
    "mcss-lam0.01": ["lam=0.01", "channel_shuffle=true"],
    # a smaller weight for the metric term (benchmarks/gradient_conflict.py: at lam = 0.01 its
    # backbone gradient is 2-5x the pose loss's)
    "mcss-lam0.003": ["lam=0.003", "channel_shuffle=true"],
    "mcss-lam0.001": ["lam=0.001", "channel_shuffle=true"],
    "baseline-s1": ["lam=0", "seed=1", "channel_shuffle=true"],
    "mcss-lam0.003-s1": ["lam=0.003", "seed=1", "channel_shuffle=true"],
    "mcss-lam0.001-s1": ["lam=0.001", "seed=1", "channel_shuffle=true"],
    # is the colour augmentation what slows the fit of the labelled subject?
    "baseline-nocolour": ["lam=0", "colour=false", "channel_shuffle=true"],
    "mcss-lam0.001-nocolour": ["lam=0.001", "colour=false", "channel_shuffle=true"],
    "baseline-nocolour-s1": ["lam=0", "colour=false", "seed=1", "channel_shuffle=true"],
    "mcss-lam0.001-nocolour-s1": ["lam=0.001", "colour=false", "seed=1",
                                  "channel_shuffle=true"],
    # colour jitter kept, channel order not shuffled
    "baseline-noshuffle": ["lam=0", "channel_shuffle=false"],
    "mcss-lam0.001-noshuffle": ["lam=0.001", "channel_shuffle=false"],
    "baseline-noshuffle-s1": ["lam=0", "channel_shuffle=false", "seed=1"],
    "mcss-lam0.001-noshuffle-s1": ["lam=0.001", "channel_shuffle=false", "seed=1"],
    # a second validation subject dressed unlike S1 (S8 shares S1's long sleeves and trousers;
    # S7 wears short sleeves and shorts, as S5 does): S7 held out, S8 joins the unlabelled pool
    "baseline-valS7": ["lam=0", "channel_shuffle=true", "val_subject=S7"],
    "baseline-noshuffle-valS7": ["lam=0", "channel_shuffle=false", "val_subject=S7"],
    "mcss-lam0.001-valS7": ["lam=0.001", "channel_shuffle=true", "val_subject=S7"],
    "mcss-lam0.001-noshuffle-valS7": ["lam=0.001", "channel_shuffle=false", "val_subject=S7"],
    # validation subjects dressed in other colours than S1 (red shirt, navy trousers): S6
    # (slate shirt, brown trousers) and S5 (green shirt, beige shorts); session 5
    "baseline-valS6": ["lam=0", "channel_shuffle=true", "val_subject=S6"],
    "baseline-noshuffle-valS6": ["lam=0", "channel_shuffle=false", "val_subject=S6"],
    "baseline-valS5": ["lam=0", "channel_shuffle=true", "val_subject=S5"],
    "baseline-noshuffle-valS5": ["lam=0", "channel_shuffle=false", "val_subject=S5"],
    "mcss-lam0.001-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6"],
    "mcss-lam0.001-noshuffle-valS6": ["lam=0.001", "channel_shuffle=false", "val_subject=S6"],
    "mcss-lam0.001-valS5": ["lam=0.001", "channel_shuffle=true", "val_subject=S5"],
    "mcss-lam0.001-noshuffle-valS5": ["lam=0.001", "channel_shuffle=false", "val_subject=S5"],
    # the metric term's weight and the seed spread, on S6
    "mcss-lam0.003-valS6": ["lam=0.003", "channel_shuffle=true", "val_subject=S6"],
    "mcss-lam0.01-valS6": ["lam=0.01", "channel_shuffle=true", "val_subject=S6"],
    "control-valS6": ["lam=0", "forward_unlabelled=true", "channel_shuffle=true",
                      "val_subject=S6"],
    "baseline-valS6-s1": ["lam=0", "channel_shuffle=true", "val_subject=S6", "seed=1"],
    "mcss-lam0.001-valS6-s1": ["lam=0.001", "channel_shuffle=true", "val_subject=S6", "seed=1"],
    "baseline-valS6-s2": ["lam=0", "channel_shuffle=true", "val_subject=S6", "seed=2"],
    "mcss-lam0.001-valS6-s2": ["lam=0.001", "channel_shuffle=true", "val_subject=S6", "seed=2"],
    "mcss-lam0.003-valS6-s1": ["lam=0.003", "channel_shuffle=true", "val_subject=S6", "seed=1"],
    # embedding size (default 128)
    "mcss-lam0.001-emb32-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6",
                                  "embedding_dim=32"],
    "mcss-lam0.001-emb512-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6",
                                   "embedding_dim=512"],
    # session 6: semi-hard mining drops the pairs whose positive is farther than a negative
    "mcss-hardest-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6",
                           "strategy=hardest"],
    "mcss-all-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6", "strategy=all"],
    "mcss-hardest-lam0.01-valS6": ["lam=0.01", "channel_shuffle=true", "val_subject=S6",
                                   "strategy=hardest"],
    # negatives at least 16 frames (1.1 s) away: poses that differ clearly, easier to learn
    "mcss-gap16-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6", "min_gap=16"],
    "mcss-hardest-gap16-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6",
                                 "strategy=hardest", "min_gap=16"],
    # negatives from the positive's camera: only the pose can separate them from the positive
    "mcss-views4-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6", "n_views=4",
                          "n_sequences=2"],
    "mcss-negcam-views4-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6",
                                 "n_views=4", "n_sequences=2", "negative_camera=positive"],
    "mcss-negcam-hardest-views4-valS6": ["lam=0.001", "channel_shuffle=true", "val_subject=S6",
                                         "n_views=4", "n_sequences=2", "strategy=hardest",
                                         "negative_camera=positive"],
    # can the network learn the multi-view objective at all? The triplet term dominates
    "metric-lam1-all-valS6": ["lam=1", "channel_shuffle=true", "val_subject=S6",
                              "strategy=all"],
    "mcss-lam0.1-all-valS6": ["lam=0.1", "channel_shuffle=true", "val_subject=S6",
                              "strategy=all"],
    "mcss-lam0.03-all-valS6": ["lam=0.03", "channel_shuffle=true", "val_subject=S6",
                               "strategy=all"],
    "mcss-lam0.03-all-valS6-s1": ["lam=0.03", "channel_shuffle=true", "val_subject=S6",
                                  "strategy=all", "seed=1"],
    "mcss-lam0.03-all-valS6-s2": ["lam=0.03", "channel_shuffle=true", "val_subject=S6",
                                  "strategy=all", "seed=2"],
    # session 7, on top of the new defaults (every triplet, lam 0.03): 4 views of 2 takes; the
    # term ramped in over 300 steps (its embedding contracts to cosine 0.94 at step 200
    # without); a wider and a narrower margin
    "mcss-lam0.03-all-views4-valS6": [*ALL_S6, "n_views=4", "n_sequences=2"],
    "mcss-lam0.03-all-views4-valS6-s1": [*ALL_S6, "n_views=4", "n_sequences=2", "seed=1"],
    "mcss-lam0.03-all-views4-valS6-s2": [*ALL_S6, "n_views=4", "n_sequences=2", "seed=2"],
    "mcss-lam0.03-all-ramp300-valS6": [*ALL_S6, "lam_warmup_steps=300"],
    "mcss-lam0.03-all-margin0.5-valS6": [*ALL_S6, "margin=0.5"],
    "mcss-lam0.03-all-margin0.1-valS6": [*ALL_S6, "margin=0.1"],
    # session 8: views first, then pose: lam decays linearly to 0.03 over the first 500 steps
    "mcss-lam0.3to0.03-all-valS6": [*ALL_S6, "lam_initial=0.3", "lam_warmup_steps=500"],
    "mcss-lam1to0.03-all-valS6": [*ALL_S6, "lam_initial=1", "lam_warmup_steps=500"],
    # the same crops seen in twice the steps
    "baseline-b16x2000": ["lam=0", "steps=2000", "batch_labelled=16", "n_sequences=2",
                          "channel_shuffle=true"],
    # every valid triplet, 4 views of 2 takes: the two settings that brought MCSS level
    "mcss-all-views4": ["lam=0.01", "strategy=all", "n_views=4", "n_sequences=2",
                        "channel_shuffle=true"],
    # larger labelled batches, fewer steps: about the quick preset's time
    "baseline-b64x700": ["lam=0", "batch_labelled=64", "steps=700", "channel_shuffle=true"],
    "mcss-b64x700": ["lam=0.01", "batch_labelled=64", "steps=700", "channel_shuffle=true"],
    # the metric term ramped in linearly (lam_warmup_steps): pose first, then invariance
    "mcss-lamramp500": ["lam=0.01", "lam_warmup_steps=500", "channel_shuffle=true"],
    "mcss-lamramp1000": ["lam=0.01", "lam_warmup_steps=1000", "channel_shuffle=true"],
    # bf16 autocast (AMX on recent Xeons): more steps in the quick preset's time
    "baseline-bf16x1350": ["lam=0", "precision=bf16", "steps=1350", "channel_shuffle=true"],
    "mcss-bf16x1350": ["lam=0.01", "precision=bf16", "steps=1350", "channel_shuffle=true"],
    "mcss-lam0.001-bf16x1350": ["lam=0.001", "precision=bf16", "steps=1350",
                                "channel_shuffle=true"],
    # session 16: why does full supervision fit so slowly? Every training frame labelled (the
    # 36 actors of the quick data with 32 extra), 1200 steps, recipes of the optimisation
    **{f"labels100-{name}": [*LABELS100, *sets] for name, sets in {
        "default": [], "l2": ["pose_loss=l2"],
        "lr3e-3": ["lr=3e-3", "warmup_steps=200"], "lr3e-4": ["lr=3e-4"],
        "noshuffle": ["channel_shuffle=false"], "feature": ["regress_from=feature"],
        # session 17: does a visible left/right cue help (no flips, which would swap the
        # marked side's label; --data of `mcss synth --marked-left`)? Camera-frame targets?
        "noflip": ["flip=false"], "camera": ["pose_frame=camera"]}.items()},
}


def train(data: Path, run: Path, sets: list[str]) -> float | None:
    """Train one variant unless its run is finished; returns the seconds it took (None: reused)."""
    if (run / "final_metrics.json").exists():
        return None
    cmd = [sys.executable, "-m", "mcss", "train", "--data", str(data), "--out", str(run),
           "--preset", "quick", *[a for s in sets for a in ("--set", s)]]
    run.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with (run / "train.log").open("w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.monotonic() - began


def summarise(run: Path, sets: list[str], seconds: float | None) -> dict[str, Any]:
    """A finished variant's results; ``sets`` as listed in VARIANTS (PINNED goes under them)."""
    from mcss.config import load_config, resolve_config

    if load_config(run / "config.yaml") != resolve_config("quick", None, [*PINNED, *sets]):
        raise SystemExit(f"{run}: trained with another config than {sets}; remove the folder "
                         "to train the variant again")
    final = json.loads((run / "final_metrics.json").read_text())
    rates = [v for _, name, v in logged_rows(run, "train") if name == "steps_per_s"]
    return {"sets": sets, "val": final, "seconds": seconds,
            "steps_per_s": statistics.median(rates) if rates else None,
            "train_loss_tail": training_tail(run)}


def markdown(results: dict[str, Any]) -> str:
    rows = ["| variant | `--set` | canonical | PA-MPJPE | camera-frame | spread | cosine "
            "| labelled fit | mean pose | steps/s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results["variants"].items():
        v = r["val"]
        fit = f"{v['fit_canonical_mpjpe']:.1f}" if "fit_canonical_mpjpe" in v else ""
        rows.append(f"| {name} | `{' '.join(r['sets'])}` "
                    f"| {v['canonical_mpjpe']:.1f} | {v['pa_mpjpe']:.1f} | {v['mpjpe']:.1f} "
                    f"| {100 * v['spread_ratio']:.0f}% | {v['embedding_cosine']:.2f} | {fit} "
                    f"| {v['mean_pose_mpjpe']:.1f} | {r['steps_per_s'] or float('nan'):.2f} |")
    return "\n".join(rows) + ("\n\nValidation subject S8 unless a variant sets `val_subject`; "
                              "mean pose: the mean-pose predictor on that subject; labelled "
                              "fit: canonical MPJPE on the labelled frames (logged since "
                              "session 4).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="quick synthetic dataset folder")
    ap.add_argument("--out", type=Path, required=True, help="folder of the variants' runs")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results"
                    / "quick_sweep.json")
    args = ap.parse_args()
    if not (args.data / "meta.json").exists():
        from mcss.synth.generate import preset, synthesize

        synthesize(preset("quick"), args.data)
    results: dict[str, Any] = {"variants": {}}
    before = (json.loads(args.results.read_text())["variants"] if args.results.exists() else {})
    for name in args.variants:
        # semi-hard first: the default these variants ran with
        seconds = train(args.data, args.out / name, [*PINNED, *VARIANTS[name]])
        if seconds is None:  # reused: keep the time measured when it was trained
            seconds = before.get(name, {}).get("seconds")
        results["variants"][name] = summarise(args.out / name, VARIANTS[name], seconds)
        print(f"{name}: {json.dumps(results['variants'][name]['val'])}", flush=True)
    import torch

    results |= {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
                "command": "python benchmarks/quick_sweep.py " + " ".join(sys.argv[1:])}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
