"""Is the synthetic renderer fast enough never to be the training bottleneck?

Measures, in one run and on the same machine:

* the renderer's throughput (crops/s), end to end as the generator does it per take:
  :func:`mcss.synth.generate.render_view` of one real DeepMimic take (``--frames`` frames)
  through each of the 4 rig cameras; the camera backgrounds are rendered once, outside the
  timing (the generator does the same);
* the training throughput (img/s) of a torchvision ResNet-18 (``weights=None``, 51 outputs:
  17 joints x 3) doing forward + backward + SGD step on random tensors, batch 32, at the same
  crop size;

and reports medians over ``--repeats`` repetitions (after warm-up) and the ratio
renderer / training (target >= 5x). Writes a JSON file and prints a markdown table.

Usage::

    python benchmarks/render.py [--sizes 64 128] [--repeats 5]
        [--out benchmarks/results/render.json] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from machine import cpu_model, load_average
from mcss.synth import body, generate, rig

TARGET_RATIO = 5.0
CLIP = "walk"
SUBJECT = "S1"


class RenderJob:
    """One take of a real clip, seen by the 4 rig cameras; :meth:`run` renders every view."""

    def __init__(self, frames: int, size: int, seed: int = 0) -> None:
        config = generate.preset("quick", frames_per_take=frames, image_size=size, seed=seed)
        clips = generate.load_clips(config.motions)
        rng = np.random.default_rng(seed)
        self.actor = body.actor_by_name(body.SUBJECT_ACTORS[SUBJECT])
        other = clips[sorted(clips)[0]]
        self.joints = generate.take_motion(clips[CLIP], other, self.actor, config, rng)
        self.light = generate._light(rng)
        self.cameras = rig.make_rig(config.cameras, rng)
        self.backgrounds = [rig.render_background(cam, rng) for cam in self.cameras]
        self.size = size

    @property
    def crops(self) -> int:
        return len(self.joints) * len(self.cameras)

    def run(self) -> None:
        for camera, background in zip(self.cameras, self.backgrounds, strict=True):
            generate.render_view(self.joints, self.actor, camera, background, self.light, self.size)


class TrainJob:
    """One SGD step of a ResNet-18 on a random batch."""

    def __init__(self, size: int, batch: int, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = torchvision.models.resnet18(weights=None, num_classes=51)
        self.model.train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        self.x = torch.randn(batch, 3, size, size)
        self.y = torch.randn(batch, 51)
        self.batch = batch

    def run(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()


def timed(fn, repeats: int, warmup: int, calls: int = 1) -> tuple[list[float], list[float]]:
    """Wall seconds of ``calls`` consecutive calls of ``fn``, ``repeats`` times, after
    warm-up, and the CPU utilisation of each repetition (process CPU time / wall time: about
    the thread count when the process had the cores to itself, far less when it shared them)."""
    for _ in range(warmup):
        fn()
    times, utilisation = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            fn()
        times.append(time.perf_counter() - start)
        utilisation.append((time.process_time() - cpu) / times[-1])
    return times, utilisation


def profile(fn, top: int = 25) -> str:
    """cProfile of one call of ``fn``: the ``top`` entries by total (own) time."""
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=48, help="frames of the rendered take")
    parser.add_argument("--batch", type=int, default=32, help="training batch size")
    parser.add_argument(
        "--train-steps", type=int, default=2, help="SGD steps per timed training repetition"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/render.json"))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print (and store) a cProfile of one render per size",
    )
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5 (medians of fewer mean little)")

    load_before = load_average()
    rows = []
    profiles = {}
    for size in args.sizes:
        render_job = RenderJob(args.frames, size)
        render_times, render_util = timed(render_job.run, args.repeats, warmup=1)
        render_rate = [render_job.crops / t for t in render_times]
        if args.profile:
            profiles[str(size)] = profile(render_job.run)
        train_job = TrainJob(size, args.batch)
        train_times, train_util = timed(
            train_job.run, args.repeats, warmup=2, calls=args.train_steps
        )
        train_rate = [args.batch * args.train_steps / t for t in train_times]
        r_med, t_med = statistics.median(render_rate), statistics.median(train_rate)
        rows.append(
            {
                "size": size,
                "render": {
                    "crops_per_s_median": r_med,
                    "crops_per_repetition": render_job.crops,
                    "seconds": render_times,
                    "crops_per_s": render_rate,
                    "cpu_utilisation": render_util,
                    "what": f"render_view of a {args.frames}-frame '{CLIP}' take by {SUBJECT} "
                    f"through {len(render_job.cameras)} cameras (backgrounds precomputed)",
                },
                "train": {
                    "img_per_s_median": t_med,
                    "images_per_repetition": args.batch * args.train_steps,
                    "seconds": train_times,
                    "img_per_s": train_rate,
                    "cpu_utilisation": train_util,
                    "what": f"ResNet-18 (weights=None, 51 outputs) forward+backward+SGD step, "
                    f"batch {args.batch}, random tensors, MSE loss",
                },
                "ratio_render_over_train": r_med / t_med,
                "meets_target": r_med / t_med >= TARGET_RATIO,
            }
        )
        util = statistics.median(train_util)
        if util < 0.6 * torch.get_num_threads():
            print(
                f"warning: training used {util:.2f} of {torch.get_num_threads()} threads' CPU "
                "time: the cores were shared with other work, the numbers are too low",
                file=sys.stderr,
            )
        print(
            f"size {size}: render {r_med:.1f} crops/s, train {t_med:.1f} img/s, "
            f"ratio {r_med / t_med:.2f}",
            file=sys.stderr,
            flush=True,
        )

    result = {
        "benchmark": "render",
        "target_ratio": TARGET_RATIO,
        "repeats": args.repeats,
        "warmup": {"render": 1, "train_steps": 2},
        "results": rows,
        "machine": {
            "cpu_model": cpu_model(),
            "os_cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "torchvision_version": torchvision.__version__,
            "numpy_version": np.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
    }
    if profiles:
        result["profiles"] = profiles
        for size, text in profiles.items():
            print(f"\n### cProfile of one render, {size} px\n```\n{text}```")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")

    print(
        f"\nRenderer vs training, median of {args.repeats} repetitions "
        f"({result['machine']['cpu_model']}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__})\n"
    )
    print("| crop px | renderer crops/s | ResNet-18 train img/s | ratio | >= 5x |")
    print("|---:|---:|---:|---:|:---:|")
    for row in rows:
        print(
            f"| {row['size']} | {row['render']['crops_per_s_median']:.1f} "
            f"| {row['train']['img_per_s_median']:.1f} "
            f"| {row['ratio_render_over_train']:.2f} "
            f"| {'yes' if row['meets_target'] else 'no'} |"
        )
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
