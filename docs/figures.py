"""Draw the figures of the docs: ``python docs/figures.py`` (writes docs/images/*.png)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mcss.geometry import canonical_body_frame, to_canonical  # noqa: E402
from mcss.motion.deepmimic import clip_paths, load_deepmimic  # noqa: E402
from mcss.skeleton import BONES, JOINT_NAMES  # noqa: E402

OUT = Path(__file__).parent / "images"
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _result(name: str) -> dict:
    """A committed benchmark result, ``benchmarks/results/<name>.json``."""
    return json.loads((RESULTS / f"{name}.json").read_text())


def _variant(run_name: str) -> str:
    """A long-schedule run's variant: its name without the ``-s<seed>`` suffix."""
    return run_name.rsplit("-s", 1)[0]


def _save(fig: plt.Figure, name: str) -> Path:
    """Lay out, write ``docs/images/<name>`` and close the figure."""
    fig.tight_layout()
    path = OUT / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def canonical_frame_figure() -> Path:
    """A walking pose in the world and in the canonical body frame, with the frame's axes."""
    pose = load_deepmimic(clip_paths()["walk"]).joints[12]
    frame = canonical_body_frame(pose)
    canon = to_canonical(pose)
    fig = plt.figure(figsize=(10, 5))
    for k, (title, joints, axes, origin) in enumerate([
        ("world frame (z up, mm)", pose, frame, pose[0]),
        ("canonical body frame", canon, np.eye(3), np.zeros(3)),
    ]):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        for parent, child in BONES:
            side = JOINT_NAMES[child].split("_")[0]
            colour = {"left": "tab:blue", "right": "tab:red"}.get(side, "0.3")
            xyz = joints[[parent, child]]
            ax.plot(xyz[:, 0], xyz[:, 1], xyz[:, 2], color=colour, lw=2)
        for axis, name, colour in zip(axes, ("x: LHip->RHip", "up: pelvis->thorax",
                                             "z = x cross up"), ("m", "g", "k"), strict=True):
            tip = origin + 350 * axis
            ax.quiver(*origin, *(tip - origin), color=colour, lw=2, arrow_length_ratio=0.15)
            ax.text(*tip, name, color=colour, fontsize=8)
        ax.set_title(title)
        centre = joints.mean(axis=0)
        for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre, strict=True):
            setter(c - 900, c + 900)
        if k == 1:
            ax.view_init(elev=15, azim=-60, vertical_axis="y")
    fig.suptitle("Canonical body frame: origin pelvis; up = pelvis->thorax; x = LHip->RHip "
                 "made orthogonal to up; z = x cross up (the body faces -z). Left blue, right red.",
                 fontsize=9)
    OUT.mkdir(exist_ok=True)
    path = OUT / "canonical_frame.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def long_schedule_figure() -> Path:
    """Validation (S8) canonical and camera-frame MPJPE against step, per long-schedule run."""
    from mcss.report import COLOURS

    results = _result("long_schedule")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, run in results["runs"].items():
        variant = _variant(name)
        steps = [row["step"] for row in run["val_curve"]]
        for ax, key in zip(axes, ("canonical_mpjpe", "mpjpe"), strict=True):
            ax.plot(steps, [row[key] for row in run["val_curve"]], label=name,
                    color=COLOURS.get(variant, "tab:purple"),
                    ls="-" if name.endswith("-s0") else "--")
    refs = results["runs"]["baseline-s0"]["val_curve"][-1]
    axes[0].axhline(refs["mean_pose_mpjpe"], color="tab:red", ls="--", lw=1,
                    label="mean-pose predictor")
    for ax, title in zip(axes, ("canonical frame", "camera frame"), strict=True):
        ax.set_xlabel("step")
        ax.set_ylabel("validation MPJPE (mm)")
        ax.set_title(f"{title}, {results['device']}")
    axes[0].legend(fontsize=7)
    return _save(fig, "long_schedule.png")


def validation_subjects_figure() -> Path:
    """Quick-preset baseline on each validation subject, with and without the channel
    shuffle, against that subject's mean-pose predictor (from quick_sweep.json)."""
    variants = _result("quick_sweep")["variants"]
    subjects = {"S8": "", "S7": "-valS7", "S6": "-valS6", "S5": "-valS5"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.arange(len(subjects))
    for ax, key, title in zip(axes, ("canonical_mpjpe", "mpjpe"),
                              ("canonical frame", "camera frame"), strict=True):
        for shift, (label, infix, colour) in zip((-0.2, 0.2), (
                ("channel shuffle", "baseline", "tab:blue"),
                ("no channel shuffle", "baseline-noshuffle", "tab:orange")), strict=True):
            values = [variants[infix + suffix]["val"][key] for suffix in subjects.values()]
            ax.bar(x + shift, values, width=0.4, label=label, color=colour)
        if key == "canonical_mpjpe":
            refs = [variants["baseline" + s]["val"]["mean_pose_mpjpe"] for s in subjects.values()]
            ax.scatter(x, refs, marker="_", s=900, color="tab:red", label="mean-pose predictor",
                       zorder=3)
        ax.set_xticks(x, [f"{s}" for s in subjects])
        ax.set_ylabel("validation MPJPE (mm)")
        ax.set_title(f"quick baseline, {title}")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("S1 (labelled): red shirt, navy trousers. S8: orange, dark green; S7: pink, "
                 "beige shorts; S6: slate, brown; S5: green, beige shorts", fontsize=8)
    return _save(fig, "validation_subjects.png")


def schedule_gain_figure() -> Path:
    """Test MPJPE of each seed at 2400 steps (the full preset) and 6000 steps (the long
    schedule) for the session-6 defaults and the current ones, and each run's labelled fit:
    how far the test error is from the error on the labelled actor."""
    long: dict[str, list[dict]] = {}
    for name in ("long_schedule_defaults", "long_schedule_all"):
        for run_name, run in _result(name)["runs"].items():
            long.setdefault(_variant(run_name), []).append(run)
    methods = [("baseline", "reproduce_full_lam0.001", "baseline", "baseline", "tab:blue"),
               ("control", "reproduce_full_lam0.001", "control", "control", "tab:gray"),
               ("MCSS semi-hard, lam 0.001", "reproduce_full_lam0.001", "mcss",
                "mcss-lam0.001-shuffle", "tab:olive"),
               ("MCSS all triplets, lam 0.03", "reproduce_full_session7", "mcss",
                "mcss-lam0.03-all", "tab:green")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    full = {name: _result(name)["methods"]
            for name in ("reproduce_full_lam0.001", "reproduce_full_session7")}
    for i, (label, full_name, full_key, long_key, colour) in enumerate(methods):
        m = full[full_name][full_key]
        points = {0: (m["canonical_mpjpe"]["per_seed"], m["mpjpe"]["per_seed"],
                      m["labelled_fit"]["per_seed"])}
        runs = long[long_key]
        points[1] = ([r["test"]["canonical_mpjpe"] for r in runs],
                     [r["test"]["mpjpe"] for r in runs],
                     [r["val_curve"][-1]["fit_canonical_mpjpe"] for r in runs])
        for x, (canonical, camera, fit) in points.items():
            xs = np.full(len(canonical), x + (i - 1.5) * 0.12)
            for ax, values in zip(axes[:2], (canonical, camera), strict=True):
                ax.scatter(xs, values, color=colour, s=18, label=label if x == 1 else None)
                ax.hlines(np.mean(values), xs[0] - 0.05, xs[0] + 0.05, color=colour)
            axes[2].scatter(fit, canonical, color=colour, marker="o" if x else "^", s=22,
                            label=f"{label}, {(2400, 6000)[x]} steps")
    refs = full["reproduce_full_session7"]["baseline"]["references"]
    for ax, title in zip(axes[:2], ("test canonical MPJPE", "test camera-frame MPJPE"),
                         strict=True):
        ax.set_xticks([0, 1], ["2400 steps\n(one GPU)", "6000 steps\n(H200)"])
        ax.set_ylabel("mm (dots: seeds, bars: means)")
        ax.set_title(title)
    axes[0].axhline(refs["mean_pose_mpjpe"], color="tab:red", ls="--", lw=1,
                    label="mean-pose predictor")
    axes[0].legend(fontsize=7)
    lim = [30, 125]
    axes[2].plot(lim, lim, color="black", lw=0.5, ls=":")
    axes[2].set_xlabel("labelled fit: canonical MPJPE on S1 (mm)")
    axes[2].set_ylabel("test canonical MPJPE (mm)")
    axes[2].set_title("what the labelled actor does not teach")
    axes[2].legend(fontsize=6)
    return _save(fig, "schedule_gain.png")


def label_curve_figure() -> Path:
    """The curve preset's label-efficiency curve, from its committed results."""
    from mcss.config import label_budget
    from mcss.report import plot_label_curve

    results = _result("reproduce_curve")
    curve: dict[str, dict[float, float]] = {}
    for key, m in results["methods"].items():
        fraction = label_budget(m["label"])[1] or 0.0
        curve.setdefault(key.split("@")[0], {})[fraction] = m["canonical_mpjpe"]["mean"]
    refs = next(iter(results["methods"].values()))["references"]
    return plot_label_curve(curve, OUT / "label_curve.png",
                            {"mean_pose_mpjpe": refs["mean_pose_mpjpe"]})


def actors_figure() -> Path:
    """MCSS at 6000 steps against the number of unlabelled actors added: test and S8
    canonical MPJPE, and cross-view Hit@1, with the baseline, the BatchNorm control, the
    supervised reference and the issue's targets as lines (CPU runs of sessions 8-9)."""
    results = _result("long_schedule_cpu_actors")
    runs, retrieval = results["runs"], results["retrieval"]
    mcss = {0: "quick", 8: "extra8", 16: "extra16", 32: "extra32"}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, title, value in (
        (axes[0], "test (S9/S11) canonical MPJPE", lambda r: r["test"]["canonical_mpjpe"]),
        (axes[1], "validation (S8) canonical MPJPE",
         lambda r: r["val_curve"][-1]["canonical_mpjpe"]),
    ):
        seeds = {actors: [value(r) for k, r in runs.items() if k.startswith(f"{label}/mcss-")]
                 for actors, label in mcss.items()}
        for actors, values in seeds.items():
            ax.scatter([actors] * len(values), values, color="tab:green", s=22,
                       label="MCSS (dots: seeds)" if actors == 0 else None)
        ax.plot(list(seeds), [np.mean(v) for v in seeds.values()], color="tab:green", lw=1)
        ax.scatter([8], [value(runs["extra8/control-s0"])], color="tab:gray", marker="s",
                   s=28, label="BatchNorm control")
        base = value(runs["baseline/baseline-s0"])
        ax.axhline(base, color="tab:blue", lw=1, label="baseline (S1 labelled)")
        ax.axhline(value(runs["supervised/baseline-s0"]), color="tab:purple", ls="-.", lw=1,
                   label="baseline, S1+S5-S7 labelled")
        ax.axhline(0.75 * base, color="black", ls=":", lw=1, label="target: -25%")
        ax.set_title(title)
        ax.set_ylabel("mm")
    axes[0].axhline(runs["baseline/baseline-s0"]["references"]["mean_pose_mpjpe"],
                    color="tab:red", ls="--", lw=1, label="mean-pose predictor")
    hits = {actors: retrieval[f"{label}/mcss-lam0.03-all"]["hit@1/75mm"] * 100
            for actors, label in mcss.items()}
    axes[2].plot(list(hits), list(hits.values()), "o-", color="tab:green", label="MCSS")
    axes[2].scatter([8], [retrieval["extra8/control"]["hit@1/75mm"] * 100], color="tab:gray",
                    marker="s", s=28, label="BatchNorm control")
    base_hit = retrieval["baseline/baseline"]["hit@1/75mm"] * 100
    axes[2].axhline(base_hit, color="tab:blue", lw=1, label="baseline")
    axes[2].axhline(retrieval["random"]["hit@1/75mm"] * 100, color="tab:red", ls="--", lw=1,
                    label="random ranking")
    axes[2].axhline(2 * base_hit, color="black", ls=":", lw=1, label="target: 2x baseline")
    axes[2].set_title("cross-view Hit@1 (75 mm, test)")
    axes[2].set_ylabel("%")
    for ax in axes:
        ax.set_xticks(list(mcss))
        ax.set_xlabel("unlabelled actors added (6000 steps)")
        ax.legend(fontsize=6)
    return _save(fig, "actors.png")


def schedule_12k_figure() -> Path:
    """Baseline and MCSS (32 more actors) at 6000 and 12000 steps on the CPU: S8 canonical
    MPJPE and the labelled fit (canonical MPJPE on S1) against step."""
    runs = {6000: _result("long_schedule_cpu_actors")["runs"],
            12000: _result("long_schedule_cpu_12k")["runs"]}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for steps, results in runs.items():
        for label, name, colour in (("baseline", "baseline/baseline-s0", "tab:blue"),
                                    ("MCSS +32 actors", "extra32/mcss-lam0.03-all-s0",
                                     "tab:green")):
            curve = results[name]["val_curve"]
            x = [row["step"] for row in curve]
            for ax, key in zip(axes, ("canonical_mpjpe", "fit_canonical_mpjpe"), strict=True):
                ax.plot(x, [row[key] for row in curve], color=colour, marker=".",
                        ls="-" if steps == 12000 else "--", label=f"{label}, {steps} steps")
    axes[0].set_title("validation (S8) canonical MPJPE")
    axes[1].set_title("labelled fit: canonical MPJPE on S1")
    for ax in axes:
        ax.set_xlabel("step")
        ax.set_ylabel("mm")
        ax.legend(fontsize=7)
    return _save(fig, "schedule_12k.png")


LEVERS = {  # run in long_schedule_cpu_levers -> label
    "extra32/baseline-s0": "baseline",
    "extra32/control-s0": "BatchNorm control, +32",
    "extra32/mcss-lam0.03-all-s0": "MCSS, +32 actors",
    "extra64/mcss-lam0.03-all-s0": "MCSS, +64 actors",
    "extra32/mcss-lam1to0.03-all-s0": "MCSS, +32, lam 1 -> 0.03",
    "extra32/mcss-lam0.03-all-views4-s0": "MCSS, +32, 4 views x 2 takes",
    "extra32/mcss-lam0.03-all-views4-emb256-s0": "MCSS, +32, 4 views, 256-d embedding",
    "extra32/mcss-lam0.03-all-views4-seq4-s0": "MCSS, +32, 4 views x 4 takes",
}


ACTOR_LEVERS = {  # run in long_schedule_cpu_actor_levers -> label (session 13)
    "extra32/baseline-s0": "baseline",
    "extra32/control-s0": "BatchNorm control",
    "extra32/mcss-lam0.03-all-views4-s0": "MCSS, 4 views x 2 takes",
    "extra32/mcss-lam0.03-all-views4-mix0.5-s0": "MCSS + MixStyle",
    "extra32/control-views4-mix0.5-s0": "control + MixStyle",
    "extra32/mcss-lam0.03-all-views4-adv0.03-s0": "MCSS + adversary 0.03 (stopped)",
    "extra32/mcss-lam0.03-all-views4-adv0.1-s0": "MCSS + adversary 0.1 (stopped)",
    "extra32/mcss-lam0.03-all-views4-cons1-s0": "MCSS + pose consistency (stopped)",
    "extra32/baseline-wd0.05-s0": "baseline, weight decay 0.05",
    "extra32/mcss-lam0.03-all-views4-wd0.05-s0": "MCSS, weight decay 0.05",
    "extra32/mcss-lam0.03-all-views4-teach1-s0": "MCSS + mean teacher (session 14)",
    "extra32/teacher1-views4-s0": "mean teacher alone (session 14)",
}


X32_SCHEDULES = (  # (steps, result, {method label: variant or reproduce key})
    (2400, "reproduce_full", {"baseline": "baseline", "control": "control", "MCSS": "mcss"}),
    (6000, "long_schedule_x32_seeds", {"baseline": "baseline", "control": "control",
                                       "MCSS": "mcss-lam0.03-all-views4"}),
    (9000, "long_schedule_x32_9k", {"baseline": "baseline", "control": "control",
                                    "MCSS": "mcss-lam0.03-all-views4"}),
)
_METRICS = (("canonical_mpjpe", "test canonical MPJPE"), ("pa_mpjpe", "test PA-MPJPE"),
            ("mpjpe", "test camera-frame MPJPE"))
# the baseline with all 36 training actors labelled, beside its S1-labelled self (CPU)
FULL_LABEL_SCHEDULES = ((2400, "long_schedule_cpu_2400_supervised"),
                        (6000, "long_schedule_cpu_6000_supervised"),
                        (9000, "long_schedule_cpu_9k_supervised"))


def _label_prefix_values(result: dict, prefix: str, metric: str) -> list[float]:
    """Test ``metric`` of every run whose merged name starts with ``prefix`` (e.g. its label)."""
    return [run["test"][metric] for name, run in result["runs"].items()
            if name.startswith(prefix)]


def _seed_values(result: dict, key: str, metric: str) -> list[float]:
    """Test ``metric`` of each seed of ``key``: a reproduce method or a long-schedule variant."""
    if "methods" in result:
        return result["methods"][key][metric]["per_seed"]
    return [run["test"][metric] for name, run in result["runs"].items()
            if _variant(name) == key]


def x32_schedule_figure() -> Path:
    """The 32-extra-actor, 4-view setting on an H200 at 2400, 6000 and 9000 steps: each seed's
    test error per method, the baseline given the labels of every actor (on the CPU, at each
    schedule; S5-S7 too at 9000 steps), and the mean gains over the same-machine baseline of
    MCSS and of the full labels against the -25% target."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 5.2))
    colours = {"baseline": "tab:blue", "control": "tab:gray", "MCSS": "tab:green"}
    gains: dict[str, list[float]] = {metric: [] for metric, _ in _METRICS}
    for x, (_, name, methods) in enumerate(X32_SCHEDULES):
        result = _result(name)
        seeds = {(label, metric): _seed_values(result, key, metric)
                 for label, key in methods.items() for metric, _ in _METRICS}
        for i, label in enumerate(methods):
            for ax, (metric, _) in zip(axes[:3], _METRICS, strict=True):
                values = seeds[label, metric]
                xs = np.full(len(values), x + (i - 1) * 0.18)
                ax.scatter(xs, values, color=colours[label], s=16, label=label if x == 0 else None)
                ax.hlines(np.mean(values), xs[0] - 0.07, xs[0] + 0.07, color=colours[label])
        for metric in gains:
            gains[metric].append(100 * (np.mean(seeds["MCSS", metric])
                                        / np.mean(seeds["baseline", metric]) - 1))
    full_label = {name: _result(name) for _, name in FULL_LABEL_SCHEDULES}
    supervised = full_label["long_schedule_cpu_9k_supervised"]["runs"]
    for ax, (metric, _) in zip(axes[:3], _METRICS, strict=True):
        ax.scatter([len(X32_SCHEDULES) - 1 + 0.36],
                   [supervised["supervised/baseline-s0"]["test"][metric]], marker="D",
                   color="black", s=26, label="S1 + S5-S7 labelled (CPU, 1 seed)")
    assert [s for s, _ in FULL_LABEL_SCHEDULES] == [s for s, _, _ in X32_SCHEDULES]  # one x axis
    full_label_gains: dict[str, list[float]] = {metric: [] for metric, _ in _METRICS}
    for x, result in enumerate(full_label.values()):
        for ax, (metric, _) in zip(axes[:3], _METRICS, strict=True):
            values = _label_prefix_values(result, "all-labelled/baseline-s", metric)
            ax.scatter(np.full(len(values), x + 0.36), values, marker="*", color="black", s=30,
                       label="all 36 actors labelled (CPU)" if x == 0 else None)
            base = _label_prefix_values(result, "extra32/baseline-s", metric)
            full_label_gains[metric].append(100 * (np.mean(values) / np.mean(base) - 1))
    ticks = [f"{steps} steps" for steps, _, _ in X32_SCHEDULES]
    for ax, (_, title) in zip(axes[:3], _METRICS, strict=True):
        ax.set_xticks(range(len(ticks)), ticks)
        ax.set_ylabel("mm (dots: seeds, bars: means)")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    for metric, title in _METRICS:
        line, = axes[3].plot(range(len(ticks)), gains[metric], marker="o", label=title[5:])
        axes[3].plot(range(len(ticks)), full_label_gains[metric], marker="*", ls=":",
                     color=line.get_color(), label=f"{title[5:]}, all labelled")
    axes[3].axhline(-25, color="tab:red", ls="--", lw=1, label="the paper's -25%")
    axes[3].set_xticks(range(len(ticks)), ticks)
    axes[3].set_ylabel("vs its machine's baseline, mean over seeds (%)")
    axes[3].set_title("gain: MCSS (H200), all labelled (CPU)")
    axes[3].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    return _save(fig, "x32_schedule.png")


def levers_figure(result: str = "long_schedule_cpu_levers", levers: dict[str, str] = LEVERS,
                  out: str = "levers.png") -> Path:
    """Levers at 6000 steps on one CPU machine: the S8 curve of every run, and test canonical
    and PA-MPJPE as bars with the mean-pose predictor and the -25% target."""
    runs = _result(result)["runs"]
    levers = {name: label for name, label in levers.items() if name in runs}
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(12, 2.2 + 0.25 * len(levers)))
    for i, (name, label) in enumerate(levers.items()):
        curve = runs[name]["val_curve"]
        curves.plot([r["step"] for r in curve], [r["canonical_mpjpe"] for r in curve],
                    marker=".", ls="-" if i < 10 else "--", label=label)  # colours repeat at 10
    curves.set_title("validation (S8) canonical MPJPE")
    curves.set_xlabel("step")
    y = np.arange(len(levers))
    for offset, key, label, colour in ((-0.2, "canonical_mpjpe", "canonical MPJPE", "tab:green"),
                                       (0.2, "pa_mpjpe", "PA-MPJPE", "tab:olive")):
        bars.barh(y + offset, [runs[n]["test"][key] for n in levers], height=0.4,
                  color=colour, label=label)
    base = runs["extra32/baseline-s0"]
    bars.axvline(base["references"]["mean_pose_mpjpe"], color="tab:red", ls="--", lw=1,
                 label="mean-pose predictor")
    bars.axvline(0.75 * base["test"]["canonical_mpjpe"], color="black", ls=":", lw=1,
                 label="target: -25% canonical")
    bars.set_yticks(y, list(levers.values()), fontsize=8)
    bars.set_xlim(0, 185)  # room for the legend right of the bars
    bars.invert_yaxis()
    bars.set_title("test S9/S11, mean over actions")
    bars.set_xlabel("mm")
    bars.legend(fontsize=7, loc="lower right")
    curves.legend(fontsize=7)
    curves.set_ylabel("mm")
    return _save(fig, out)


# full-label runs at 2400 steps (session 17): (results file, run folder, label, colour)
CUE_RUNS = (
    ("left_right_cues", "runs/ceil/all2400/baseline-s0", "flips (the default)", "tab:gray"),
    ("left_right_cues", "runs/opt/labels100-noflip-2400", "no flips", "tab:blue"),
    ("left_right_cues", "runs/facing/labels100-2400", "flips, facing gate", "tab:orange"),
    ("left_right_marked", "runs/marked/labels100-noflip-2400",
     "no flips, left side marked (--marked-left)", "tab:green"),
)


def left_right_cue_figure() -> Path:
    """Every actor labelled, 2400 steps: the validation subject's canonical MPJPE and
    left-right agreement over training, with the body's left side marked by a darker shade
    or not, and with the facing gate."""
    fig, (error, agreement) = plt.subplots(1, 2, figsize=(11, 4))
    for result, run, label, colour in CUE_RUNS:
        curve = _result(result)["runs"][run]["curve"]
        steps = [row["step"] for row in curve]
        error.plot(steps, [row["canonical_mpjpe"] for row in curve], "o-", ms=3,
                   color=colour, label=label)
        if all("left_right_agreement" in row for row in curve):
            agreement.plot(steps, [row["left_right_agreement"] for row in curve], "o-", ms=3,
                           color=colour, label=label)
    error.set_title("S8 canonical MPJPE (mm), 36 actors labelled")
    agreement.set_title("S8 left-right agreement (1: told apart, 0: averaged)")
    agreement.axhline(0, color="black", lw=0.5)
    for ax in (error, agreement):
        ax.set_xlabel("training step")
        ax.legend(fontsize=7)
    return _save(fig, "left_right_cue.png")


if __name__ == "__main__":
    print(canonical_frame_figure())
    print(long_schedule_figure())
    print(label_curve_figure())
    print(validation_subjects_figure())
    print(schedule_gain_figure())
    print(actors_figure())
    print(schedule_12k_figure())
    print(levers_figure())
    print(levers_figure("long_schedule_cpu_actor_levers", ACTOR_LEVERS, "actor_levers.png"))
    print(x32_schedule_figure())
    print(left_right_cue_figure())
