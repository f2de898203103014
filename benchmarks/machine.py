"""What machine a benchmark ran on: shared by the scripts in this folder."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's best guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The CPU's bfloat16-related instruction sets (from /proc/cpuinfo; empty if unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return sorted(f for f in flags if "bf16" in f or f.startswith("amx"))


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other work on the machine skews timings)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def write_runs_result(path: Path, runs: dict[str, Any], **extra: Any) -> None:
    """Write ``runs`` (and ``extra`` entries) as a results file with the machine, torch and
    the command that made it."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(
        {"runs": runs, **extra, "cpu": cpu_model(), "cpu_count": os.cpu_count(),
         "torch": torch.__version__,
         "command": f"python benchmarks/{Path(sys.argv[0]).name} " + " ".join(sys.argv[1:])},
        indent=1) + "\n")
    print(f"wrote {path}")


def runs_parser(doc: str, results_name: str) -> argparse.ArgumentParser:
    """The command line of a benchmark that measures trained runs on a dataset: ``--data``,
    ``--runs`` and ``--results``; the benchmark adds its own options."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="trained run folders")
    ap.add_argument("--results", type=Path,
                    default=Path(__file__).parent / "results" / results_name)
    return ap


def runs_arguments(doc: str, results_name: str, max_frames: int,
                   frames_help: str) -> argparse.Namespace:
    """:func:`runs_parser` with ``--max-frames``, parsed."""
    ap = runs_parser(doc, results_name)
    ap.add_argument("--max-frames", type=int, default=max_frames, help=frames_help)
    return ap.parse_args()
