"""Write the benchmark tables from the committed ``benchmarks/results/*.json``: the headline
tables into README.md, every table (ablations, past defaults) into docs/benchmarks.md.

    python benchmarks/tables.py        # rewrites the block between each file's markers
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def render_table(r: dict) -> str:
    m = r["machine"]
    rows = "\n".join(
        f"| {x['size']} | {x['render']['crops_per_s_median']:.0f} | "
        f"{x['train']['img_per_s_median']:.0f} | {x['ratio_render_over_train']:.1f}x |"
        for x in r["results"]
    )
    return (
        f"**Renderer vs training** (`{r['command']}`; {m['cpu_model']}, {m['os_cpu_count']} "
        f"cores, torch {m['torch_version']}; median of {r['repeats']}):\n\n"
        "| crop px | renderer crops/s | ResNet-18 train img/s | ratio (target >= 5x) |\n"
        "|---:|---:|---:|---:|\n" + rows
    )


def data_table(d: dict) -> str:
    s = d["stats_mm"]
    rows = [
        ("nearest S1 pose (PA-MPJPE)", "nearest_S1_pa_mpjpe"),
        ("nearest pose of any training subject (PA-MPJPE)", "nearest_train_pa_mpjpe"),
        ("mean S1 pose (canonical-frame MPJPE)", "mean_pose_canonical_mpjpe"),
        ("mean S1 pose (PA-MPJPE)", "mean_pose_pa_mpjpe"),
    ]
    body = "\n".join(f"| {label} | {s[k]['median']:.1f} | {s[k]['p10']:.1f} | "
                     f"{s[k]['p90']:.1f} |" for label, k in rows)
    return (
        "**Synthetic test poses vs training poses** (`python benchmarks/data_stats.py --data "
        "DIR`, quick preset; S9/S11 test poses, one camera per instant; mm; deterministic):\n\n"
        "| | median | p10 | p90 |\n|---|---:|---:|---:|\n" + body
    )


def throughput_table(t: dict) -> str:
    b = t["config"]["batch"]
    batch = b["labelled"] + b["unlabelled"]
    mining = t["mining_at_256"]
    return (
        f"**Training throughput** (`{t['command']}`; quick preset, {t['config']['image_size']} "
        f"px, batch {b['labelled']} labelled + {b['unlabelled']} unlabelled; "
        f"{t['machine']['cpu']}, {t['machine']['cpu_count']} cores; median of "
        f"{len(t['ours_steps_per_s'])}):\n\n"
        "| | steps/s | crops/s |\n|---|---:|---:|\n"
        f"| mcss MCSS step (data, augmentation, mining, losses, AdamW) | "
        f"{t['median_ours']:.2f} | {t['samples_per_s']:.0f} |\n"
        f"| plain forward+backward+AdamW, random tensors (compute limit) | "
        f"{t['median_reference']:.2f} | {t['median_reference'] * batch:.0f} |\n"
        f"| ratio (target >= 0.90) | {t['ratio']:.2f} | |\n\n"
        f"Mining the temporal hard negatives of a 256-crop batch: "
        f"{1000 * mining['mining_s']:.1f} ms, {100 * mining['fraction']:.2f}% of a training "
        "step at that batch size (target < 2%)."
    )


def distributed_table(d: dict) -> str:
    m, batch = d["machine"], d["config"]["global_batch"]
    rows = "".join(f"| {p} | {d['median_steps_per_s'][p]:.2f} | "
                   f"{d['median_samples_per_s'][p]:.0f} |\n" for p in d["median_steps_per_s"])
    return (
        f"**Distributed training on the CPU** (`{d['command']}`; torchrun, {m['backend']}; "
        f"quick preset, global batch {batch} crops; {m['cpu']}, {m['cpu_count']} cores; "
        f"median of {len(d['steps_per_s']['1'])}):\n\n"
        "| processes | steps/s | crops/s |\n|---:|---:|---:|\n" + rows +
        f"\n2 processes run at {d['ratio_2_over_1']:.2f}x one process here: with 2 cores, one "
        "process already uses both, so this is the cost of the distributed step (gathers, "
        "global BatchNorm, DDP all-reduce), not a speed-up. No GPU figures measured yet."
    )


# which settings each committed reproduction ran with, where it is not the current defaults
CAPTIONS = {
    "reproduce_full": "its session-12 definition: 32 more unlabelled actors and 4 views of 2 "
                      "takes per step, the current defaults otherwise (lam 0.03, every valid "
                      "triplet, channel shuffle)",
    "reproduce_full_session7": "its session-7 definition (the quick dataset, 2 views of 4 takes "
                               "per step), the current training defaults",
    "reproduce_full_lam0.1_all": "lam 0.1, every valid triplet; its baseline and control ran "
                                 "again beside it",
    "reproduce_full_lam0.001": "session-5/6 defaults (lam 0.001, semi-hard triplets, channel "
                               "shuffle)",
    "reproduce_full_noshuffle": "session-4 defaults (no channel shuffle), beside the 3 runs of "
                                "long_schedule_lam0.001 on the same GPU",
    "reproduce_full_session3": "session-3 defaults, on the CPU",
    "reproduce_curve": "the current defaults, 1000 steps per run, on 2 CPU cores (session 15)",
    "long_schedule_cpu_actors": "the current defaults on the quick dataset and with 8, 16 and 32 "
                                "more unlabelled actors, beside a baseline, a BatchNorm control "
                                "and a baseline with S1 and S5-S7 labelled (a supervised "
                                "reference); 2 CPU cores, 2 runs at a time with 1 thread each "
                                "(benchmarks/merge_long.py)",
    "long_schedule_x32_seeds": "32 more unlabelled actors (`--extra-subjects 32`), 3 seeds each "
                               "of the current defaults and of 4 views of 2 takes per step, "
                               "beside 2 baseline seeds and a BatchNorm control",
    "long_schedule_x32_9k": "the setting of long_schedule_x32_seeds at 9000 steps: 3 baseline "
                            "seeds, 4 seeds of 4 views of 2 takes per step and a BatchNorm "
                            "control, in two calls on one H200 (5 runs side by side, then 3; "
                            "benchmarks/merge_long.py)",
    "long_schedule_cpu_2400_mirror": "mirror negatives (`mirror_negatives=true`: the mirror "
                                     "image of every unlabelled crop is a negative of its "
                                     "take) on top of MCSS with 4 views of 2 takes, 3 seeds "
                                     "each, beside the runs of long_schedule_cpu_2400_supervised"
                                     "; session 16, 2 CPU cores, 2 runs at a time with 1 thread "
                                     "each (benchmarks/merge_long.py)",
    "quick_sweep_labels100": "why does full supervision fit so slowly? Every training frame "
                             "labelled (the 36 actors), 1200 steps, recipes of the "
                             "optimisation; validation S8; session 16, 2 CPU cores, trained "
                             "2 at a time with 1 thread each (`mcss train --preset full --set "
                             "steps=1200 ...`), summarised by quick_sweep.py",
    "long_schedule_cpu_9k_marked": "9000 steps with left and right visible: S1 labelled "
                                   "(baseline and MCSS with 4 views of 2 takes, side by side) "
                                   "and all 36 training actors labelled (alone), on the marked "
                                   "data with flips off, beside session 14's symmetric "
                                   "baseline and full-label runs; one seed each, session 18, "
                                   "2 CPU cores, 1 thread per run (benchmarks/merge_long.py)",
    "long_schedule_cpu_6000_noflip": "flips off (`flip=false`) on the symmetric data, S1 "
                                     "labelled: the baseline and MCSS with 4 views of 2 takes, "
                                     "one seed each, beside session 15's two baseline seeds "
                                     "with flips on; session 18, 2 CPU cores, 1 thread per run "
                                     "(benchmarks/merge_long.py)",
    "long_schedule_cpu_12k_views4": "12000 steps on the Intel Xeon: the S1 baseline and MCSS "
                                    "with 2 views (an earlier session, runs/cpu10) beside the "
                                    "baseline with every training actor's labels and MCSS "
                                    "with 4 views of 2 takes (session 22; its seconds blank: "
                                    "9385 s by its files, summarised by a second call), and "
                                    "the same MCSS run in bfloat16 with channels-last "
                                    "(sessions 22-23; stopped at step 4061 and continued in "
                                    "the next session, its seconds blank), one seed each, 1 "
                                    "thread per run (benchmarks/merge_long.py)",
    "long_schedule_cpu_2400_bf16": "MCSS with 4 views of 2 takes in bfloat16 autocast with "
                                   "channels-last memory (`precision=bf16 "
                                   "channels_last=true`, session 22) beside session 20's "
                                   "float32 run and its variant with one colour draw per "
                                   "instant, one seed each, and seed 1 in both precisions "
                                   "(session 23), the same Intel Xeon type; 2 CPU cores, 1 "
                                   "thread per run (benchmarks/merge_long.py)",
    "long_schedule_cpu_6000_bf16": "the same check at 6000 steps: the S1 baseline and MCSS "
                                   "with 4 views of 2 takes in float32 (session 20) beside "
                                   "MCSS in bfloat16 with channels-last (session 23), seed 0, "
                                   "the same Intel Xeon type; 2 CPU cores, 1 thread per run "
                                   "(benchmarks/merge_long.py)",
    "long_schedule_cpu_2400_appearance": "appearance augmentation for the baseline and MCSS "
                                         "with 4 views of 2 takes: random erasing of the "
                                         "labelled crops (`erase=0.5`: half of them get a "
                                         "rectangle of 2-25% of the crop in a random colour) "
                                         "and a random hue rotation of every crop (`hue=true`)"
                                         ", beside the same runs without them, one seed each; "
                                         "session 19, 2 CPU cores, side by side with 1 thread "
                                         "each (benchmarks/merge_long.py)",
    "long_schedule_cpu_6000_rotation": "in-plane rotation of every crop up to 30 degrees "
                                       "(`rotate=30`) for the baseline and MCSS with 4 views "
                                       "of 2 takes, beside the same runs without it, one seed "
                                       "each; session 20, 2 CPU cores, 1 thread per run "
                                       "(benchmarks/merge_long.py)",
    "long_schedule_cpu_6000_colour": "twice the colour jitter's spread on the unlabelled crops "
                                     "(`unlabelled_colour_strength=2`) and on every crop "
                                     "(`colour_strength=2` too), MCSS with 4 views of 2 takes, "
                                     "beside session 20's baseline and MCSS (the same machine "
                                     "type and seed) and the baseline with every training "
                                     "actor's labels (all-labelled); session 21, 2 CPU cores, "
                                     "1 thread per run (benchmarks/merge_long.py)",
    "long_schedule_cpu_2400_view_colour": "MCSS with 4 views of 2 takes, each unlabelled view "
                                          "with its own colour draw (current) and with the "
                                          "views of an instant sharing one "
                                          "(`shared_view_colour=true`), one seed each; "
                                          "session 20, 2 CPU cores, side by side with 1 "
                                          "thread each",
    "long_schedule_cpu_6000_erase": "random erasing of the labelled crops (`erase=0.5`) for "
                                    "the S1 baseline at 6000 steps, 2 seeds, beside session "
                                    "15's two baseline seeds without it; session 19, 2 CPU "
                                    "cores, 1 thread per run (benchmarks/merge_long.py)",
    "long_schedule_cpu_2400_marked": "S1 labels on the marked data (`mcss synth --preset quick "
                                     "--extra-subjects 32 --marked-left`: every actor's left "
                                     "side at half brightness), flips off (a flipped crop "
                                     "would show the mark on the right), one seed each; "
                                     "session 17, 2 CPU cores, side by side with 1 thread each",
    "long_schedule_cpu_2400_facing": "the facing gate (`facing_gate=true`: left-right "
                                     "asymmetries weighted by the body's front-back axis) for "
                                     "the baseline (one seed) and MCSS with 4 views of 2 takes "
                                     "(2 seeds), beside the same runs without it; session 17, "
                                     "2 CPU cores, 2 runs at a time with 1 thread each "
                                     "(benchmarks/merge_long.py)",
    "quick_sweep_labels100_cues": "every training frame labelled, 1200 steps: flips off, and "
                                  "camera-frame targets (`pose_frame=camera`); session 17, 2 "
                                  "CPU cores, summarised by quick_sweep.py",
    "quick_sweep_labels100_marked": "every training frame labelled, 1200 steps, on the marked "
                                    "data (`--marked-left`), flips on and off; session 17, 2 "
                                    "CPU cores, summarised by quick_sweep.py",
    "long_schedule_cpu_2400_supervised": "the full-label reference at the full preset's "
                                         "schedule: the baseline with S1 labelled and with all "
                                         "36 training actors labelled, 3 seeds each, and MCSS "
                                         "(4 views of 2 takes), 2 seeds; session 15, 2 CPU "
                                         "cores, 2 runs at a time with 1 thread each "
                                         "(benchmarks/merge_long.py)",
    "long_schedule_cpu_6000_supervised": "the full-label reference at 6000 steps: the baseline "
                                         "with S1 labelled and with all 36 training actors "
                                         "labelled, 2 seeds each, side by side with 1 thread "
                                         "each; session 15, 2 CPU cores (MCSS on this machine: "
                                         "long_schedule_cpu_levers)",
    "long_schedule_cpu_12k_supervised": "the full-label reference at 12000 steps: the baseline "
                                        "with S1 labelled and with all 36 training actors "
                                        "labelled, one seed each, side by side with 1 thread "
                                        "each; session 19, 2 CPU cores "
                                        "(benchmarks/merge_long.py)",
    "long_schedule_cpu_9k_supervised": "how much would 3D labels of the unlabelled actors give "
                                       "at 9000 steps? The baseline with S1 labelled, with S1 "
                                       "and S5-S7 labelled (2 runs at a time, 1 thread each) "
                                       "and with all 36 training actors labelled (S1, S5-S7 and "
                                       "the 32 extra ones; alone, 2 threads), session 14; 2 CPU "
                                       "cores (benchmarks/merge_long.py)",
    "long_schedule_cpu_levers": "levers for the remaining gap, chosen on S8: 64 instead of 32 "
                                "more unlabelled actors, lam decaying from 1 to 0.03 over the "
                                "first half, 4 views of 2 takes per step (session 11), and on "
                                "top of 4 views a 256-d embedding or 4 takes (64 unlabelled "
                                "crops) per step (session 12), beside a baseline, a BatchNorm "
                                "control and MCSS with 32 more actors on the same machine; 2 "
                                "CPU cores, 2-3 runs at a time with 1 thread each "
                                "(benchmarks/merge_long.py)",
    "long_schedule_cpu_actor_levers": "levers for actor invariance on top of 4 views of 2 takes "
                                      "(session 13): MixStyle (for MCSS and the control), a "
                                      "discriminator of the labelled actor behind a gradient "
                                      "reversal, multi-view consistency of the predicted pose, "
                                      "and weight decay 0.05 (for MCSS and the baseline); a mean "
                                      "teacher's multi-view pseudo-labels with and without the "
                                      "metric term (session 14), beside "
                                      "sessions 11-12's baseline, control and 4 views on the "
                                      "same CPU model; a stopped run trailed 4 views at every "
                                      "validation (benchmarks/merge_long.py)",
    "long_schedule_cpu_12k": "twice the schedule of long_schedule_cpu_actors: the baseline "
                             "and MCSS with 32 more unlabelled actors; 2 CPU cores, 2 runs at "
                             "a time with 1 thread each (benchmarks/merge_long.py)",
    "long_schedule_all": "the current defaults (lam 0.03, every valid triplet) and lam 0.1, 3 "
                         "seeds each, beside 2 baseline seeds and a control",
    "long_schedule_defaults": "session-5/6 defaults (lam 0.001, semi-hard triplets, channel "
                              "shuffle), 3 seeds each",
    "long_schedule_lam0.003": "lam 0.003 (3 seeds) and 0.01 (1 seed), semi-hard triplets, "
                              "channel shuffle; the same dataset and schedule as "
                              "long_schedule_defaults, 4 runs side by side",
    "long_schedule_lam0.001": "session-4 defaults (no channel shuffle), beside "
                              "reproduce_full_noshuffle",
    "long_schedule": "session-3 defaults (lam 0.01, channel shuffle)",
    "quick_sweep": "semi-hard triplets unless a variant sets `strategy`",
    "quick_sweep_extra8": "semi-hard triplets unless a variant sets `strategy`; on the quick "
                          "dataset with 8 more unlabelled actors "
                          "(`mcss synth --preset quick --extra-subjects 8`)",
}


def _suffix(caption: str) -> str:
    """A table title's caption part: ``", caption"``, or nothing."""
    return f", {caption}" if caption else ""


def reproduction_table(r: dict, caption: str = "") -> str:
    from mcss.reproduce import results_markdown

    retrieval = r["retrieval"]
    hits = " | ".join(f"{name}: Hit@1 {100 * v['hit@1/75mm']:.1f}%, Hit@10 "
                      f"{100 * v['hit@10/75mm']:.1f}%" for name, v in retrieval.items())
    caption = _suffix(caption)
    return (
        f"**Reproduction, `{r['preset']}` preset{caption}** (`{r['command']}`; {r['machine']}; "
        f"{r['minutes']:.1f} min; test split S9/S11, mean over actions, mm):\n\n"
        + results_markdown(r) + f"\nCross-view retrieval at 75 mm: {hits}."
    )


def _variant_means(r: dict) -> str:
    """Mean test numbers of every variant with more than one seed."""
    groups: dict[str, list[dict]] = {}
    for name, run in r["runs"].items():
        groups.setdefault(name.rsplit("-s", 1)[0], []).append(run["test"])
    lines = [f"{variant} ({len(tests)} seeds): canonical "
             f"{sum(t['canonical_mpjpe'] for t in tests) / len(tests):.1f}, MPJPE "
             f"{sum(t['mpjpe'] for t in tests) / len(tests):.1f}, PA-MPJPE "
             f"{sum(t['pa_mpjpe'] for t in tests) / len(tests):.1f}"
             for variant, tests in groups.items() if len(tests) > 1]
    return (" Means over seeds (test, mm): " + "; ".join(lines) + ".") if lines else ""


def _references(runs: dict) -> str:
    """The mean-pose predictor and the oracle; per run label when runs differ in them."""
    from mcss.reproduce import reference_groups

    groups = reference_groups((name.split("/")[0], run["references"])
                              for name, run in runs.items())
    if len(groups) == 1:
        mean_pose, oracle, _ = groups[0]
        return (f"Mean-pose predictor {mean_pose:.1f} mm, nearest-labelled-pose oracle "
                f"{oracle:.1f} mm")
    return "Mean-pose predictor / nearest-labelled-pose oracle: " + ", ".join(
        f"{mean_pose:.1f} / {oracle:.1f} mm ({', '.join(labels)} runs)"
        for mean_pose, oracle, labels in groups)


def long_schedule_table(r: dict, caption: str = "") -> str:
    rows = []
    for name, run in r["runs"].items():
        t, v = run["test"], run["val_curve"][-1]
        fit = f"{v['fit_canonical_mpjpe']:.1f}" if "fit_canonical_mpjpe" in v else ""
        steps = f"{run['steps_done']}" + ("" if run["finished"] else " (stopped)")
        seconds = "" if run["seconds"] is None else f"{run['seconds']:.0f}"  # None: continued
        rows.append(
            f"| {name} | {steps} | {fit} | {v['canonical_mpjpe']:.1f} | "
            f"{t['canonical_mpjpe']:.1f} | {t['mpjpe']:.1f} | {t['pa_mpjpe']:.1f} | "
            f"{t['monitors']['embedding_cosine']:.2f} | "
            f"{100 * t['monitors']['spread_ratio']:.0f}% | {seconds} |")
    hits = ", ".join(f"{name} {100 * v['hit@1/75mm']:.1f}%" for name, v in r["retrieval"].items())
    caption = _suffix(caption)
    return (
        f"**Long schedule{caption}** (`{r['command']}`; {r['device']}, {r['cpu']}, "
        f"{r['cpu_count']} "
        f"cores, torch {r['torch']}; {r['steps']} steps, runs side by side; test S9/S11, mean "
        "over actions, mm):\n\n"
        "| run | steps | labelled fit | val S8 canonical | test canonical | test MPJPE | "
        "test PA-MPJPE | cosine | spread | seconds |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows)
        + f"\n\n{_references(r['runs'])}. Cross-view retrieval Hit@1 at 75 mm (first "
        f"seed): {hits}." + _variant_means(r)
    )


def quick_sweep_table(r: dict, caption: str = "") -> str:
    from quick_sweep import markdown

    how = "" if "at a time" in caption else "; runs one after another"
    caption = _suffix(caption)
    return (f"**Quick-preset sweep{caption}** (`{r['command']}`; {r['cpu']}, {r['cpu_count']} "
            f"cores, torch {r['torch']}{how}):\n\n" + markdown(r))


def search_table(s: dict) -> str:
    m, exact, ivf = s["machine"], s["exact"], s["ivf"]
    sweep = "\n".join(
        f"| IVF, nprobe {row['nprobe']} ({100 * row['fraction_scanned']:.1f}% scanned) | "
        f"{row['ms_per_query']:.3f} | {row['speedup_over_flat']:.1f}x | "
        f"{row['recall_at_10']:.3f} |" for row in ivf["sweep"]
    )
    return (
        f"**Pose search** (`{s['command']}`; {m['cpu_model']}, {m['os_cpu_count']} cores, "
        f"FAISS {m['faiss_version']}; random unit 128-d vectors with a 16-d structure, fresh "
        f"queries; top 10):\n\n"
        f"| exact, {exact['gallery']:,} x {exact['dim']}, {exact['queries']} queries "
        f"(median of {exact['repeats']}) | ms/query |\n|---|---:|\n"
        f"| FAISS flat index | {exact['faiss_ms_per_query']:.3f} |\n"
        f"| NumPy brute force (BLAS + argpartition) | {exact['numpy_ms_per_query']:.3f} |\n"
        f"| ratio NumPy / FAISS | {exact['ratio_numpy_over_faiss']:.2f} |\n\n"
        f"| {ivf['gallery']:,} x {ivf['dim']}, nlist {ivf['nlist']} (built in "
        f"{ivf['build_s']:.0f} s) | ms/query | speed-up over flat | recall@10 |\n"
        "|---|---:|---:|---:|\n"
        f"| flat (exact) | {ivf['flat_ms_per_query']:.2f} | 1x | 1 |\n" + sweep + "\n\n"
        f"On isotropic random vectors (no structure) the same IVF finds only "
        f"{100 * s['isotropic_ivf']['recall_at_10']:.0f}% of the top 10 at nprobe "
        f"{s['isotropic_ivf']['nprobe']}: its speed comes from the data's structure."
    )


def probe_table(p: dict) -> str:
    from embedding_probe import markdown

    first = next(iter(p["runs"].values()))
    return (f"**Reading the test actors' pose from the embedding** (`{p['command']}`; "
            f"{p['cpu']}; test S9/S11, mean over frames, canonical frame, mm; mean-pose "
            f"predictor {first['mean_pose']:.1f} mm; the last two columns are oracles fitted "
            "on test labels):\n\n" + markdown(p["runs"]))


def precision_table(p: dict) -> str:
    rows = "\n".join(f"| {arm} | {r['median']:.2f} | {r['speed_up']:.2f}x |"
                      for arm, r in p["runs"].items())
    return (f"**Training steps per second by precision** (`{p['command']}`; {p['cpu']} with "
            f"{', '.join(p['cpu_flags']) or 'no bfloat16 instructions'}; {p['threads']} "
            f"thread(s); MCSS recipe, {p['batch']} crops of {p['image_size']} px per step; "
            f"median of {len(next(iter(p['runs'].values()))['steps_per_s'])} interleaved "
            f"repeats of {p['steps']} steps):\n\n| arm | steps/s | speed-up |\n|---|---:|---:|\n"
            + rows)


def matches_table(p: dict) -> str:
    from cross_take_matches import markdown

    first = next(iter(p["runs"].values()))
    return (f"**Pairing instants of two takes by the network's own predictions** "
            f"(`{p['command']}`; {p['cpu']}; {first['instants']} instants of the unlabelled "
            "takes; a pair's distance is the true canonical MPJPE, mm, which training never "
            "sees):\n\n" + markdown(p["runs"], first["close_mm"]))


# every committed result, in the order docs/benchmarks.md shows them
TABLES: tuple[tuple[str, Callable[..., str]], ...] = (
    ("render", render_table),
    ("data_stats", data_table),
    ("train_throughput", throughput_table),
    ("precision_throughput_cpu", precision_table),
    ("distributed", distributed_table),
    ("reproduce_full", reproduction_table),
    ("reproduce_full_session7", reproduction_table),
    ("reproduce_full_lam0.1_all", reproduction_table),
    ("reproduce_full_lam0.001", reproduction_table),
    ("reproduce_full_noshuffle", reproduction_table),
    ("reproduce_full_session3", reproduction_table),
    ("reproduce_quick", reproduction_table),
    ("long_schedule_x32_9k", long_schedule_table),
    ("long_schedule_cpu_12k_supervised", long_schedule_table),
    ("long_schedule_cpu_9k_supervised", long_schedule_table),
    ("long_schedule_cpu_9k_marked", long_schedule_table),
    ("long_schedule_cpu_6000_supervised", long_schedule_table),
    ("long_schedule_cpu_6000_noflip", long_schedule_table),
    ("long_schedule_cpu_2400_bf16", long_schedule_table),
    ("long_schedule_cpu_6000_bf16", long_schedule_table),
    ("long_schedule_cpu_2400_appearance", long_schedule_table),
    ("long_schedule_cpu_6000_colour", long_schedule_table),
    ("long_schedule_cpu_6000_rotation", long_schedule_table),
    ("long_schedule_cpu_2400_view_colour", long_schedule_table),
    ("long_schedule_cpu_12k_views4", long_schedule_table),
    ("embedding_probe_cpu_12000", probe_table),
    ("cross_take_matches_cpu_12000", matches_table),
    ("cross_take_matches_cpu_6000", matches_table),
    ("embedding_probe_cpu_6000", probe_table),
    ("long_schedule_cpu_6000_erase", long_schedule_table),
    ("long_schedule_cpu_2400_marked", long_schedule_table),
    ("long_schedule_cpu_2400_facing", long_schedule_table),
    ("long_schedule_cpu_2400_mirror", long_schedule_table),
    ("long_schedule_cpu_2400_supervised", long_schedule_table),
    ("long_schedule_x32_seeds", long_schedule_table),
    ("long_schedule_cpu_actor_levers", long_schedule_table),
    ("long_schedule_cpu_levers", long_schedule_table),
    ("long_schedule_cpu_12k", long_schedule_table),
    ("long_schedule_cpu_actors", long_schedule_table),
    ("long_schedule_all", long_schedule_table),
    ("long_schedule_defaults", long_schedule_table),
    ("long_schedule_lam0.003", long_schedule_table),
    ("long_schedule_lam0.001", long_schedule_table),
    ("long_schedule", long_schedule_table),
    ("quick_sweep", quick_sweep_table),
    ("quick_sweep_extra8", quick_sweep_table),
    ("quick_sweep_labels100", quick_sweep_table),
    ("quick_sweep_labels100_cues", quick_sweep_table),
    ("quick_sweep_labels100_marked", quick_sweep_table),
    ("reproduce_curve", reproduction_table),
    ("search", search_table),
)
ALL_TABLES = tuple(name for name, _ in TABLES)
# what a reader of the README needs: speed, the current presets, the longest schedule and its
# full-label reference, the label curve and pose search
README_TABLES = ("render", "data_stats", "train_throughput", "precision_throughput_cpu",
                 "distributed", "reproduce_full",
                 "reproduce_quick", "long_schedule_x32_9k", "long_schedule_cpu_9k_supervised",
                 "long_schedule_cpu_12k_supervised", "reproduce_curve", "search")


def generated_block(names: tuple[str, ...] = README_TABLES) -> str:
    """The tables of the named committed results, as written between a file's markers."""
    makers = dict(TABLES)
    parts = []
    for name in names:
        result = _load(name)
        if result is not None:
            make = makers[name]
            parts.append(make(result, CAPTIONS[name]) if name in CAPTIONS else make(result))
    return "\n\n".join(parts)


def write_block(path: Path, names: tuple[str, ...]) -> None:
    """Replace the text between ``path``'s markers with the tables of ``names``."""
    text = path.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(head + START + "\n" + generated_block(names) + "\n" + END + tail)
    print(f"updated {path}")


def main() -> None:
    write_block(ROOT / "README.md", README_TABLES)
    write_block(ROOT / "docs" / "benchmarks.md", ALL_TABLES)


if __name__ == "__main__":
    main()
