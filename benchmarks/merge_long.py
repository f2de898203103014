"""Combine ``long_schedule.py`` results of separate invocations on one machine into one file.

One invocation trains on one dataset; comparing the same variant on two datasets (the quick
dataset and the one with extra unlabelled actors) takes two. Each run is named
``LABEL/run`` after the ``LABEL=PATH`` it came from; a bare ``PATH`` is an earlier merge
whose runs keep their names, so a merged result can grow. The commands are kept in order.
Runs of different machines are refused: their numbers are not side by side.

    python benchmarks/merge_long.py --results benchmarks/results/long_schedule_cpu.json \\
        quick=runs/long_std.json extra8=runs/long_x8.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

MACHINE = ("device", "cpu", "cpu_count", "torch", "steps")


def _named(label: str | None, items: dict[str, Any]) -> dict[str, Any]:
    """Items renamed ``label/name`` (kept as they are for ``label=None``); no random ranking."""
    prefix = "" if label is None else f"{label}/"
    return {f"{prefix}{name}": v for name, v in items.items() if name != "random"}


def merge(parts: list[tuple[str | None, dict[str, Any]]]) -> dict[str, Any]:
    """``[(label, long_schedule result)]`` -> one result with runs and retrieval per label.

    A part with label ``None`` is an earlier merge: its names already carry their labels.
    """
    first = parts[0][1]
    merged: dict[str, Any] = {"runs": {}, "retrieval": {}}
    commands = []
    for label, part in parts:
        differ = [k for k in MACHINE if part.get(k) != first.get(k)]
        if differ:
            raise ValueError(f"{label or 'merged'}: {', '.join(differ)} differ from the first "
                             "result's; only runs of one machine and schedule are merged")
        runs = _named(label, part["runs"])
        if clash := sorted(runs.keys() & merged["runs"].keys()):
            raise ValueError(f"run names given twice: {', '.join(clash)}")
        merged["runs"] |= runs
        retrieval = _named(label, part["retrieval"])  # a variant's first part wins: first seed
        merged["retrieval"] |= {k: v for k, v in retrieval.items() if k not in merged["retrieval"]}
        commands.append(part["command"])
    merged["retrieval"]["random"] = first["retrieval"]["random"]
    return merged | {k: first[k] for k in MACHINE} | {"command": "; ".join(commands)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("parts", nargs="+", help="LABEL=PATH of a long_schedule.py result, or "
                    "PATH of an earlier merge")
    ap.add_argument("--results", type=Path, required=True)
    args = ap.parse_args()
    parts = []
    for item in args.parts:
        label, sep, path = item.partition("=")
        if not sep:
            label, path = None, item
        parts.append((label, json.loads(Path(path).read_text())))
    args.results.write_text(json.dumps(merge(parts), indent=1) + "\n")
    print(f"wrote {args.results}: {len(parts)} results")


if __name__ == "__main__":
    main()
