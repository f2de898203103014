"""Plots and the HTML report of a reproduction (``mcss reproduce``)."""

from __future__ import annotations

import csv
import html
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLOURS = {"baseline": "tab:grey", "control": "tab:orange", "mcss": "tab:blue"}


def validation_curve(run: Path, metric: str = "canonical_mpjpe") -> tuple[list[int], list[float]]:
    """(steps, values) of one validation metric from a run's ``metrics.csv``."""
    steps, values = [], []
    with (run / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            if row["kind"] == "val" and row["name"] == metric:
                steps.append(int(row["step"]))
                values.append(float(row["value"]))
    return steps, values


def plot_learning_curves(runs: dict[str, Path], out: Path) -> Path:
    """Validation canonical MPJPE over steps, one line per run, and the validation
    subject's sanity references as lines."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    first = next(iter(runs.values()))
    refs = {k: validation_curve(first, k)[1][-1] for k in ("mean_pose_mpjpe", "oracle_mpjpe")}
    for name, run in runs.items():
        steps, values = validation_curve(run)
        ax.plot(steps, values, marker="o", ms=3, label=name,
                color=COLOURS.get(name.split("-")[0]))
    _reference_lines(ax, refs)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation canonical MPJPE (mm)")
    ax.set_title("Learning curves (held-out training subject)")
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_mpjpe_bars(table: dict[str, list[float]], refs: dict[str, float], out: Path,
                    ylabel: str = "test canonical MPJPE (mm)") -> Path:
    """One bar per method: mean over seeds, each seed a dot; the sanity references as lines."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (name, values) in enumerate(table.items()):
        ax.bar(i, np.mean(values), color=COLOURS.get(name.split("@")[0], "tab:green"), alpha=0.8)
        ax.scatter(np.full(len(values), i), values, color="k", s=12, zorder=3)
    ax.set_xticks(range(len(table)), list(table))
    _reference_lines(ax, refs)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_label_curve(curve: dict[str, dict[float, float]], out: Path,
                     refs: dict[str, float] | None = None) -> Path:
    """Test MPJPE against the fraction of labelled training frames, per method, with the
    sanity references as lines (a curve near the mean-pose line has learnt little)."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    _reference_lines(ax, refs or {})
    for name, points in curve.items():
        xs = sorted(points)
        ax.plot([100 * x for x in xs], [points[x] for x in xs], marker="o", label=name,
                color=COLOURS.get(name))
    ax.set_xscale("log")
    ax.set_xlabel("labelled training frames (%)")
    ax.set_ylabel("test canonical MPJPE (mm)")
    ax.set_title("Label efficiency")
    ax.legend(fontsize=8)
    return _save(fig, out)


def _reference_lines(ax: Any, refs: dict[str, float]) -> None:
    styles = {"mean_pose_mpjpe": ("mean-pose predictor", "tab:red", "--"),
              "oracle_mpjpe": ("nearest-labelled-pose oracle", "tab:green", ":")}
    for key, (label, colour, style) in styles.items():
        if key in refs:
            ax.axhline(refs[key], color=colour, ls=style, lw=1.2, label=label)


def _save(fig: Any, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def markdown_to_html(text: str) -> str:
    """The markdown our tables use: ``| a | b |`` rows (the second one the ``---`` rule)
    become a table; other non-empty lines become paragraphs. Everything is escaped."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *body = table
            row = "".join(f"<th>{c}</th>" for c in head)
            rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
            out.append(f"<table><tr>{row}</tr>{rows}</table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                table.append(cells)
            continue
        flush()
        if line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


IMAGE_TITLES = {
    "learning_curves": ("Learning curves",
                        "Canonical MPJPE on the held-out training subject during training."),
    "mpjpe_bars": ("Test MPJPE by method",
                   "Mean over seeds; dots are single seeds; lines are the sanity references."),
    "label_curve": ("Label-efficiency curve",
                    "Test canonical MPJPE against the share of 3D labels used."),
}


def image_title(stem: str) -> tuple[str, str]:
    """A heading and a one-line caption for a report image, from its file name."""
    if stem in IMAGE_TITLES:
        return IMAGE_TITLES[stem]
    if stem.startswith("grid_"):
        return (f"Cross-view retrieval: {stem.removeprefix('grid_')}",
                "Each row: a query crop, then its top 5 from the other cameras; above each "
                "match, its true pose's PA-MPJPE to the query's.")
    return stem.replace("_", " ").capitalize(), ""


def write_html(out_dir: Path, title: str, sections: list[tuple[str, str]],
               images: list[Path]) -> Path:
    """``report/index.html``: text sections (markdown tables become HTML tables, other
    lines paragraphs) and images."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for heading, text in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{markdown_to_html(text)}")
    for image in images:
        target = out_dir / image.name
        if image.resolve() != target.resolve():
            shutil.copyfile(image, target)
        title, caption = image_title(image.stem)
        parts.append(f'<h3>{html.escape(title)}</h3><p>{html.escape(caption)}</p>'
                     f'<img src="{image.name}" style="max-width:100%">')
    page = out_dir / "index.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>"
                    f"{html.escape(title)}</title><style>body{{font-family:sans-serif;"
                    "max-width:60em;margin:auto}} table{{border-collapse:collapse}}"
                    "td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}}"
                    "td:first-child,th:first-child{{text-align:left}}"
                    "</style></head><body>" + "\n".join(parts) + "</body></html>\n")
    return page
