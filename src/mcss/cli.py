"""The ``mcss`` command line: one Typer app, one function per command.

Errors a user can fix (bad arguments, bad files) print one line and exit with code 2.
"""

from __future__ import annotations

import errno
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mcss.convert.commands import convert_app
from mcss.data.format import Dataset, DatasetError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="mcss: train monocular 3D human pose networks from few 3D labels and unlabelled, "
    "synchronised multi-view video (Mitra et al., CVPR 2020).",
)
console = Console(stderr=True)
app.add_typer(convert_app, name="convert")


@app.callback()
def _root() -> None:
    """mcss: semi-supervised 3D human pose from few labels and multi-view video.

    Start with `mcss synth --preset quick --out data/quick --preview data/quick.png`.
    """


class UserError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Dataset folder to write (written atomically).")],
    preset: Annotated[
        str, typer.Option(help="tiny: seconds, for tests; quick: the demo (<= 2 min); "
                          "full: >= 100k crops over every clip.")
    ] = "quick",
    image_size: Annotated[
        int | None, typer.Option(help="Crop size in px (multiple of 8, 16-256). Preset default.")
    ] = None,
    cameras: Annotated[
        int | None, typer.Option(help="Number of cameras; 4 is the Human3.6M-like ring, "
                                 "any other N a random ring.")
    ] = None,
    motions: Annotated[
        str | None, typer.Option(help="default: upright Human3.6M-like clips; all: adds "
                                 "backflips, cartwheels, crawls, rolls and get-ups.")
    ] = None,
    extra_subjects: Annotated[
        int | None, typer.Option(help="Add N unlabelled training subjects X1..XN with random "
                                 "builds and clothes (appearance variety for the multi-view "
                                 "term; S1, S5-S8, S9, S11 stay byte-identical).")
    ] = None,
    marked_left: Annotated[
        bool, typer.Option(help="Diagnostic: paint the body's left side a darker shade, so "
                           "colour alone tells left from right (real clothes rarely do; "
                           "docs/training.md).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    preview: Annotated[
        Path | None, typer.Option(help="Also write a PNG contact sheet (instants x cameras).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset at --out.")] = False,
) -> None:
    """Render the embedded synthetic multi-view dataset (Human3.6M-style subjects and splits).

    Example: mcss synth --preset quick --out data/quick --preview data/quick.png
    """
    from mcss.synth.generate import preset as make_preset
    from mcss.synth.generate import same_config, synthesize

    if motions not in (None, "default", "all"):
        raise UserError(f"--motions must be 'default' or 'all', not {motions!r}")
    try:
        config = make_preset(preset, image_size=image_size, cameras=cameras, motions=motions,
                             extra_subjects=extra_subjects, marked_left=marked_left or None,
                             seed=seed)
    except ValueError as err:
        raise UserError(str(err)) from err
    if (out / "meta.json").exists() and not overwrite:
        if same_config(Dataset(out).meta["provenance"].get("config"), config):
            console.print(f"{out} already holds this dataset; nothing to do (--overwrite to "
                          "render it again).")
            if preview:
                _write_preview(out, preview)
            return
        raise UserError(f"{out} holds another dataset; pass --overwrite or choose another --out")
    start = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("rendering takes", total=None)
        synthesize(config, out, on_take=lambda done, total: progress.update(
            task, completed=done, total=total))
    ds = Dataset(out)
    seconds = time.perf_counter() - start
    console.print(
        f"wrote {out}: {len(ds)} crops of {config.image_size} px, "
        f"{len(ds.meta['sequences'])} takes, {len(ds.meta['subjects'])} subjects, "
        f"{len(ds.meta['actions'])} actions, {len(ds.cameras)} cameras "
        f"in {seconds:.1f} s ({len(ds) / seconds:.0f} crops/s)"
    )
    if preview:
        _write_preview(out, preview)


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset folder (mcss synth / mcss convert).")],
    out: Annotated[Path, typer.Option(help="Run folder: config, logs, checkpoints.")],
    preset: Annotated[
        str | None, typer.Option(help="tiny (seconds), quick (minutes on a CPU), full.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of config keys.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one key: --set lam=0 --set labelled=5%."),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint "
                                         "(with its saved config; --set still overrides).")
                      ] = False,
    device: Annotated[
        str | None, typer.Option(help="auto (a GPU if there is one), cpu or cuda.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a pose network: few 3D labels (default S1) + multi-view unlabelled video.

    lam > 0 is MCSS; --set lam=0 is the baseline (same code path, same schedule);
    --set lam=0 --set forward_unlabelled=true is the BatchNorm control.
    Example: mcss train --data data/quick --out runs/mcss --preset quick
    On 4 GPUs: torchrun --nproc-per-node 4 -m mcss train --data ... --out ... (docs/distributed.md)
    """
    from mcss.checkpoint import best_checkpoint
    from mcss.config import ConfigError, resolve_config
    from mcss.train import train as run_training

    overrides = [*(set_ or []), *([f"device={device}"] if device else [])]
    saved = out / "config.yaml"
    try:
        if resume and saved.is_file() and not (preset or config):
            cfg = resolve_config(None, saved, overrides)
        else:
            cfg = resolve_config(preset, config, overrides)
    except ConfigError as err:
        raise UserError(str(err)) from err
    Dataset(data)  # fail early, with a clear message, on a bad dataset folder
    try:
        metrics = run_training(data, out, cfg, resume=resume, progress=progress)
    except ConfigError as err:
        raise UserError(str(err)) from err
    except KeyboardInterrupt as stop:
        console.print(str(stop))
        raise SystemExit(130) from None
    mpjpe = metrics.get("mpjpe", float("nan"))
    console.print(f"run written to {out}; final validation MPJPE {mpjpe:.1f} mm")
    if (best := best_checkpoint(out)) is not None:
        chosen = best[1]["metrics"]
        console.print(f"lowest validation canonical MPJPE {chosen['canonical_mpjpe']:.1f} mm at "
                      f"step {chosen['step']}: mcss eval {out} --checkpoint best")


@app.command("eval", short_help="Evaluate a run: per-action MPJPE, PA-MPJPE, PCK/AUC beside "
             "the sanity references.")
def eval_(
    run: Annotated[Path, typer.Argument(help="Run folder (its latest checkpoint) or a "
                                         "checkpoint folder.")],
    data: Annotated[Path, typer.Option(help="Dataset folder to evaluate on.")],
    split: Annotated[str, typer.Option(help="Split of the dataset (never tune on test).")] = "test",
    out: Annotated[Path | None, typer.Option(help="Folder for eval-<split>.json and .md "
                                             "(default: the run folder).")] = None,
    checkpoint: Annotated[str, typer.Option(
        help="Of a run folder: 'latest', or 'best' (the step with the lowest validation "
             "canonical MPJPE; written as eval-<split>-best.json).")] = "latest",
) -> None:
    """Evaluate a trained run: per-action MPJPE, canonical MPJPE, PA-MPJPE, N-MPJPE, 3D-PCK
    and AUC, the mean over actions and over frames, each subject's mean, beside the
    mean-pose and nearest-labelled-pose references.

    Example: mcss eval runs/mcss --data data/quick --split test
    The step chosen on the validation subjects:
    mcss eval runs/mcss --data data/quick --checkpoint best
    """
    import json

    from mcss.checkpoint import CheckpointError, best_checkpoint
    from mcss.evaluate import evaluate_run, evaluation_markdown

    if checkpoint not in ("latest", "best"):
        raise UserError(f"--checkpoint must be latest or best, got {checkpoint!r}")
    source, name = run, f"eval-{split}"
    if checkpoint == "best":
        if (best := best_checkpoint(run)) is None:
            raise UserError(f"{run} has no checkpoints/best (trained with keep_best=false, or "
                            "before any validation); evaluate its latest checkpoint instead")
        source, name = best[0], f"eval-{split}-best"
    try:
        result = evaluate_run(source, data, split)
    except CheckpointError as err:
        raise UserError(str(err)) from err
    folder = out or (run if (run / "config.yaml").exists() else run.parent)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    report = evaluation_markdown(result)
    (folder / f"{name}.md").write_text(report)
    print(report)
    console.print(f"written {folder / f'{name}.json'} and .md")


@app.command(short_help="Cross-view pose retrieval: Hit@k against a random ranking, and "
                        "image grids.")
def retrieve(
    runs: Annotated[list[str], typer.Argument(help="NAME=RUN pairs (or RUN): the runs to "
                                               "compare, e.g. mcss=runs/mcss base=runs/base.")],
    data: Annotated[Path, typer.Option(help="Dataset folder.")],
    out: Annotated[Path, typer.Option(help="Folder for results.json, retrieval.md, grids.")],
    split: Annotated[str, typer.Option(help="Split to search in.")] = "test",
    max_queries: Annotated[int, typer.Option(help="Queries drawn (seeded) from the split.")] = 2000,
) -> None:
    """Cross-view pose retrieval: a query from one camera, the gallery from the other cameras;
    a hit at k when a top-k match has a pose within 50/75/100 mm (PA-MPJPE) of the query's.
    Compared with a random ranking.

    Example: mcss retrieve mcss=runs/mcss base=runs/base --data data/quick --out runs/retrieval
    """
    from mcss.checkpoint import CheckpointError
    from mcss.evaluate import retrieve_runs
    from mcss.retrieval import retrieval_table

    named = {}
    for item in runs:
        name, sep, path = item.partition("=")
        named[name if sep else Path(item).name] = Path(path if sep else item)
    try:
        results = retrieve_runs(named, data, out, split, max_queries)
    except CheckpointError as err:
        raise UserError(str(err)) from err
    print(retrieval_table(results))
    console.print(f"written {out}/results.json, retrieval.md and grid_*.png")


def _inference_errors() -> tuple[type[Exception], ...]:
    """Errors of inference, search and export that a user can fix (printed as UserError)."""
    from mcss.checkpoint import CheckpointError
    from mcss.export import ExportError
    from mcss.pose_index import PoseIndexError
    from mcss.predict import PredictError

    return CheckpointError, PredictError, PoseIndexError, ExportError


@app.command("predict", short_help="Predict 3D poses on images and videos.")
def predict_(
    run: Annotated[Path, typer.Argument(help="Run folder (its latest checkpoint) or a "
                                         "checkpoint folder.")],
    inputs: Annotated[list[Path], typer.Argument(help="Images, videos, or folders of them "
                                                 "(searched recursively).")],
    boxes: Annotated[Path | None, typer.Option(help="JSON file of person boxes (x0, y0, w, h "
                                               "in px) keyed by input name, and by frame index "
                                               "for videos (docs/inference.md); default: centre "
                                               "crop.")
                     ] = None,
    out: Annotated[Path, typer.Option(help="Folder for predictions.json, predictions.npz and "
                                      "render/.")] = Path("predictions"),
    batch_size: Annotated[int, typer.Option(help="Crops per forward pass.")] = 64,
    render: Annotated[bool, typer.Option(help="Also draw each crop beside its 3D skeleton "
                                         "(camera and side views): a PNG per image, an MP4 "
                                         "per video.")] = False,
    image_size: Annotated[int | None, typer.Option(help="Network input in px (default: the "
                                                   "checkpoint's, else 64).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Predict 3D poses (17 H36M joints, mm, root-relative; camera frame and canonical body
    frame) on images and videos: square person crops from --boxes, or centre crops.

    Example: mcss predict runs/mcss photos/ clip.mp4 --boxes boxes.json --out pred --render
    """
    from mcss.predict import count_frames, find_inputs, load_model, predict_inputs

    try:
        model = load_model(run, image_size)
        sources = find_inputs(inputs)
        if not model.size_known:
            console.print(f"note: {model.folder} does not record its crop size; assuming "
                          f"{model.image_size} px (set --image-size)")
        with _progress(disable=not progress) as bar:
            task = bar.add_task("predicting frames", total=count_frames(sources))
            result = predict_inputs(model, sources, out, boxes, batch_size, render,
                                    on_frames=lambda n: bar.advance(task, n))
    except _inference_errors() as err:
        raise UserError(str(err)) from err
    for name in result.unused_boxes:
        console.print(f"warning: {boxes} has a box for {name!r}, which is no input")
    console.print(f"{len(result.predictions)} frames of {len(sources)} input(s): written "
                  f"{result.json}, {result.npz}"
                  + (f" and {len(result.renders)} renders in {out / 'render'}" if render else ""))


@app.command("index", short_help="Embed a dataset into a FAISS index for `mcss search`.")
def index_(
    run: Annotated[Path, typer.Argument(help="Run folder or checkpoint folder whose "
                                         "embedding is indexed.")],
    data: Annotated[Path, typer.Option(help="Dataset folder (mcss synth / mcss convert).")],
    out: Annotated[Path, typer.Option(help="Index folder to write (atomically).")],
    kind: Annotated[str, typer.Option(help="flat: exact; ivf or hnsw: approximate, for "
                                      "millions of frames.")] = "flat",
    nlist: Annotated[int | None, typer.Option(help="ivf: k-means cells (default ~4 sqrt(N)).")
                     ] = None,
    nprobe: Annotated[int | None, typer.Option(help="ivf: cells searched per query (default "
                                               "nlist/8; more: better recall, slower).")
                      ] = None,
    split: Annotated[str | None, typer.Option(help="Index one split only (default: every "
                                              "frame).")] = None,
    batch_size: Annotated[int, typer.Option(help="Crops per forward pass.")] = 256,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index at --out.")] = False,
) -> None:
    """Embed every crop of a dataset and write a FAISS index with each frame's subject,
    sequence, camera, frame, time and 3D pose, for `mcss search`.

    Example: mcss index runs/mcss --data data/quick --out runs/mcss-index --kind ivf
    """
    from mcss.pose_index import IndexParams, build_pose_index, save_pose_index
    from mcss.predict import load_model

    try:
        params = IndexParams(kind, nlist, nprobe)
        model = load_model(run)
        if out.exists() and not overwrite:
            raise UserError(f"{out} exists; pass --overwrite or choose another --out")
        with _progress() as bar:
            task = bar.add_task("embedding crops", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            built = build_pose_index(model, data, params, split, batch_size, advance)
        save_pose_index(built, out, overwrite)
    except _inference_errors() as err:
        raise UserError(str(err)) from err
    console.print(f"written {out}: {len(built)} frames, {built.meta['params']}")


@app.command("search", short_help="Find the indexed frames nearest in pose to a query image.")
def search_(
    index: Annotated[Path, typer.Argument(help="Index folder written by `mcss index`.")],
    image: Annotated[Path, typer.Option(help="Query image.")],
    box: Annotated[str | None, typer.Option(help="Person box x0,y0,w,h in px (default: "
                                            "centre crop).")] = None,
    k: Annotated[int, typer.Option(help="Number of nearest frames.")] = 10,
    out: Annotated[Path | None, typer.Option(help="Montage PNG: the query crop and the "
                                             "k nearest crops.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the hits with "
                                                  "their full 3D poses as JSON.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="The checkpoint that built the index, "
                                                    "if moved (its hash is checked).")] = None,
    nprobe: Annotated[int | None, typer.Option(help="ivf: cells searched per query.")] = None,
    ef_search: Annotated[int | None, typer.Option(help="hnsw: candidates per query.")] = None,
) -> None:
    """Find the indexed frames whose pose embedding is nearest to a query image's, with the
    network that built the index: distances, where each frame comes from, how far its 3D
    label is from the query's predicted pose.

    Example: mcss search runs/mcss-index --image person.jpg --box 410,120,200,520 --out hits.png
    """
    import json

    from mcss.pose_index import hits_json, hits_table, load_pose_index, search_image, write_montage

    if k < 1:
        raise UserError(f"--k must be >= 1, got {k}")
    try:
        xywh = [float(v) for v in box.split(",")] if box else None
    except ValueError:
        xywh = []
    if xywh is not None and len(xywh) != 4:
        raise UserError(f"--box must be x0,y0,w,h (four numbers, px), not {box!r}")
    try:
        pose_index = load_pose_index(index)
        pose_index.set_search(nprobe, ef_search)
        result = search_image(pose_index, pose_index.load_model(checkpoint), image, xywh, k)
        Console().print(hits_table(pose_index, result))
        if out is not None:
            _, found = write_montage(pose_index, result, out)
            console.print(f"montage: {out}" + ("" if found else " (dataset "
                          f"{pose_index.meta['dataset']['path']} not found: grey cells)"))
    except _inference_errors() as err:
        raise UserError(str(err)) from err
    if json_out is not None:
        json_out.write_text(json.dumps(hits_json(pose_index, result), indent=1) + "\n")
        console.print(f"hits: {json_out}")


@app.command("export", short_help="Export the network to ONNX.")
def export_(
    run: Annotated[Path, typer.Argument(help="Run folder or checkpoint folder.")],
    onnx: Annotated[Path, typer.Option(help="ONNX file to write.")],
    image_size: Annotated[int | None, typer.Option(help="Input crop size in px (default: the "
                                                   "checkpoint's, else 64).")] = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: the exporter's).")
                     ] = None,
) -> None:
    """Export the network to ONNX (dynamic batch): input `images` (batch, 3, S, S) RGB in
    [0, 1]; outputs embedding, pose_canonical, pose_camera (mm) and rotation. How to feed it
    is in the file's metadata_props.

    Example: mcss export runs/mcss --onnx mcss.onnx
    """
    from mcss.export import export_onnx
    from mcss.predict import load_model

    try:
        model = load_model(run, image_size)
        if not model.size_known:
            console.print(f"note: {model.folder} does not record its crop size; exporting for "
                          f"{model.image_size} px (set --image-size)")
        path = export_onnx(model, onnx, opset)
    except _inference_errors() as err:
        raise UserError(str(err)) from err
    console.print(f"written {path} ({path.stat().st_size / 1e6:.1f} MB, input "
                  f"{model.image_size}x{model.image_size} px)")


@app.command("reproduce", short_help="One command: data, training, evaluation, retrieval and "
             "an HTML report.")
def reproduce_(
    preset: Annotated[str, typer.Option(help="quick: baseline + MCSS, 1 seed (the demo, "
                                        "about 10 min on 2 CPU cores); full: baseline, "
                                        "BatchNorm control, MCSS, 3 seeds, 32 more unlabelled "
                                        "actors, 4 views per take (about 2 h on 2 CPU cores, "
                                        "4 min on one H200 with --parallel 9); curve: 1-100% "
                                        "labels; tiny: seconds, for tests.")
                      ] = "quick",
    out: Annotated[Path, typer.Option(help="Folder for data, runs, results.json, report/.")
                   ] = Path("runs/reproduce"),
    parallel: Annotated[int, typer.Option(min=1, help="Trainings run at once, as separate "
                                          "processes (a GPU or many cores; 1 on a laptop).")
                        ] = 1,
) -> None:
    """Synthesise the data, train with S1-only labels, evaluate, retrieve, and write
    results.json and report/index.html. A second call reuses every finished stage.

    Example: mcss reproduce --preset quick --out runs/quick
    """
    from mcss.reproduce import StageError, reproduce, results_markdown

    try:
        results = reproduce(preset, out, say=lambda text: console.print(text),
                            parallel=parallel)
    except (ValueError, StageError) as err:
        raise UserError(str(err)) from err
    print(results_markdown(results))
    console.print(f"report: {out / 'report' / 'index.html'}")


def _write_preview(data: Path, png: Path) -> None:
    from mcss.synth.preview import contact_sheet

    console.print(f"preview: {contact_sheet(Dataset(data), png)}")


def _progress(disable: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=False, disable=disable,
    )


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors (bad arguments, bad files) print one line and exit with 2."""
    from mcss.checkpoint import CheckpointError
    from mcss.config import ConfigError
    from mcss.safe_pickle import UnsafePickleError

    try:
        code = app(args=argv, standalone_mode=False)
    except (UserError, DatasetError, ConfigError, CheckpointError, UnsafePickleError,
            FileNotFoundError) as err:
        print(f"mcss: error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise
        print(f"mcss: error: no space left on the device writing {err.filename or 'output'} "
              f"({err.strerror}); nothing half-written was kept: free space or choose another "
              "output folder, then run the command again", file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        # Usage errors of Typer's (vendored) click: they carry their message and exit code.
        if not (hasattr(err, "format_message") and hasattr(err, "exit_code")):
            raise
        print(f"mcss: error: {err.format_message()} (see --help)", file=sys.stderr)
        sys.exit(err.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
