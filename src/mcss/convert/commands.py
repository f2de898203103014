"""``mcss convert``: one Typer sub-app, one command per source of real data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

convert_app = typer.Typer(
    no_args_is_help=True,
    help="Convert real data (Human3.6M, MPI-INF-3DHP, your own synchronised footage) into "
    "the mcss dataset format.",
)


# ---------------------------------------------------------------------------- benchmark datasets

_IMAGE_SIZE_HELP = "Crop size in px (multiple of 8, 16-256; default 64, as mcss synth)."
_UNITS_HELP = "Unit of S in the .npz: m (what mmpose writes) or mm."
_MISSING_HELP = ("Instants that lack some camera of their take: error, drop them, or keep "
                 "them.")


@convert_app.command("h36m")
def h36m_command(
    root: Annotated[Path, typer.Option(help="mmpose's preprocessed Human3.6M: frames "
                                       "S1/S1_Directions_1.54138969/..._000001.jpg (in images/ "
                                       "or here), the annotation .npz and cameras.pkl.")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write (atomically: nothing "
                                      "appears there on an error).")],
    image_size: Annotated[int | None, typer.Option(help=_IMAGE_SIZE_HELP)] = None,
    annotations: Annotated[list[Path] | None, typer.Option(
        "--annotations", help="Annotation .npz (repeat for several; default: the 17-joint "
        ".npz files in --root, --root/annotation_body3d or its fps50/ or fps10/).")] = None,
    cameras: Annotated[Path | None, typer.Option(help="Calibration pickle (default "
                                                 "cameras.pkl beside the annotations).")
                       ] = None,
    images: Annotated[Path | None, typer.Option(help="Folder the imgnames are relative to "
                                                "(default --root/images or --root).")] = None,
    units: Annotated[str, typer.Option(help=_UNITS_HELP)] = "m",
    missing_views: Annotated[str, typer.Option(help=_MISSING_HELP)] = "error",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset at --out.")
                         ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Convert Human3.6M, preprocessed by mmpose, into an mcss dataset.

    Crops from the annotation boxes, 3D joints in mm (camera and world frame), one camera
    per subject and camera id, takes as sequences, the 15 canonical actions; train S1 S5 S6
    S7 S8, test S9 S11. docs/real_data.md says how to get and preprocess the data.

    Example: mcss convert h36m --root data/h36m/processed --out data/h36m --image-size 128
    """
    from mcss.convert.h36m import convert_h36m

    _run_converter(convert_h36m, progress, root=root, out=out, image_size=image_size,
                   annotations=annotations, cameras=cameras, images=images, units=units,
                   missing_views=missing_views, overwrite=overwrite)


@convert_app.command("mpi3dhp")
def mpi3dhp_command(
    root: Annotated[Path, typer.Option(help="mmpose's preprocessed MPI-INF-3DHP: frames "
                                       "S4_Seq2_Cam0_001033.jpg / TS1_002001.jpg (in images/ "
                                       "or here), the annotation .npz files and "
                                       "cameras_train.pkl / cameras_test.pkl.")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write (atomically: nothing "
                                      "appears there on an error).")],
    image_size: Annotated[int | None, typer.Option(help=_IMAGE_SIZE_HELP)] = None,
    annotations: Annotated[list[Path] | None, typer.Option(
        "--annotations", help="Annotation .npz (repeat for train and test; default: the "
        "17-joint .npz files in --root or --root/annotations).")] = None,
    cameras_train: Annotated[Path | None, typer.Option(help="Training-set calibration "
                                                       "(default cameras_train.pkl).")] = None,
    cameras_test: Annotated[Path | None, typer.Option(help="Test-set calibration (default "
                                                      "cameras_test.pkl).")] = None,
    images: Annotated[Path | None, typer.Option(help="Folder the imgnames are relative to "
                                                "(default --root/images or --root).")] = None,
    units: Annotated[str, typer.Option(help=_UNITS_HELP)] = "m",
    missing_views: Annotated[str, typer.Option(help=_MISSING_HELP)] = "error",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset at --out.")
                         ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Convert MPI-INF-3DHP, preprocessed by mmpose, into an mcss dataset.

    Joints reordered to mcss's H36M-17 order (docs/real_data.md has the table), 3D joints in
    mm, world z up; train S1-S8 (8 cameras, synchronised), test TS1-TS6 (one camera each).

    Example: mcss convert mpi3dhp --root data/3dhp/processed --out data/3dhp --image-size 128
    """
    from mcss.convert.mpi3dhp import convert_mpi3dhp

    _run_converter(convert_mpi3dhp, progress, root=root, out=out, image_size=image_size,
                   annotations=annotations, cameras_train=cameras_train,
                   cameras_test=cameras_test, images=images, units=units,
                   missing_views=missing_views, overwrite=overwrite)


def _run_converter(convert: Callable[..., Path], progress: bool, image_size: int | None,
                   **options: Any) -> None:
    """Run a benchmark converter with a progress bar (on a terminal, started once the inputs
    are validated) and print its warnings after it succeeded, so an error stays one line."""
    import time

    from mcss.cli import _progress, console
    from mcss.convert.common import DEFAULT_IMAGE_SIZE
    from mcss.data.format import Dataset

    start = time.perf_counter()
    bar, task, notes = _progress(), None, []

    def on_frame(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("cropping frames", total=total)
        bar.update(task, completed=done)

    try:
        path = convert(image_size=image_size or DEFAULT_IMAGE_SIZE, say=notes.append,
                       on_frame=on_frame if progress and console.is_terminal else None,
                       **options)
    except BaseException:
        bar.live.transient = True  # a bar left on screen would add lines to the error
        raise
    finally:
        if task is not None:  # stopping an unstarted bar still prints a newline
            bar.stop()
    for note in notes:
        console.print(f"warning: {note}", markup=False)
    ds = Dataset(path)
    console.print(
        f"wrote {path}: {len(ds)} crops of {ds.meta['image_size']} px, "
        f"{len(ds.meta['subjects'])} subjects, {len(ds.meta['sequences'])} sequences, "
        f"{len(ds.cameras)} cameras, {int(ds.labelled.sum())} labelled, "
        f"in {time.perf_counter() - start:.1f} s", markup=False,
    )


# ---------------------------------------------------------------------------- footage


@convert_app.command("footage")
def footage_command(
    video: Annotated[list[str], typer.Option(
        "--video", help="One camera's video file or frame folder (images sorted by name); "
        "NAME=PATH names the camera, else it is the file stem / folder name. Once per camera, "
        "at least 2.")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write (atomically: nothing "
                                      "appears there on an error).")],
    offset: Annotated[list[str] | None, typer.Option(
        "--offset", help="CAM=N: camera CAM's frame i+N shows instant i (N may be negative; "
        "default 0). An instant's number is the frame number of a camera without offset.")
    ] = None,
    boxes: Annotated[Path | None, typer.Option(
        help='Person boxes JSON {"CAM": {"FRAME": \\[x0, y0, w, h]}} in px, FRAME = the '
        "camera's own frame number (not the instant); frames without a box are interpolated. "
        "Without it: the centred square of each frame.")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="3D labels .npz: frame (instants), camera (names), joints_3d (N, 17, 3) in mm, "
        "camera frame, mcss/H36M-17 joint order.")] = None,
    image_size: Annotated[int | None, typer.Option(help=_IMAGE_SIZE_HELP)] = None,
    margin: Annotated[float, typer.Option(help="Square crop side / the box's longer side.")
                      ] = 1.2,
    fps: Annotated[float | None, typer.Option(help="Frame rate (default: the videos'; needed "
                                              "for frame folders).")] = None,
    subject: Annotated[str, typer.Option(help="Subject name of every row (train split).")
                       ] = "footage",
    action: Annotated[str, typer.Option(help="Action name of every row.")] = "session",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset at --out.")
                         ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Convert your own synchronised multi-view footage and a few 3D labels.

    One video or frame folder per camera; no calibration needed.
    Sync: with --offset CAM=N, frame i+N of camera CAM shows instant i.
    Only instants that every camera shows are kept (longer cameras are cut).
    All rows form one subject (--subject, train split), one action and one
    sequence; `mcss train --set labelled=footage` trains on its labelled rows
    (docs/footage.md says what training needs besides).

    Example:
      mcss convert footage --video studio/cam0.mp4 --video studio/cam1.mp4 \\
        --offset cam1=3 --boxes studio/boxes.json --labels studio/labels.npz \\
        --out data/studio
    """
    from mcss.convert.footage import convert_footage

    _run_converter(convert_footage, progress, image_size=image_size, videos=video, out=out,
                   offsets=offset, boxes=boxes, labels=labels, margin=margin, fps=fps,
                   subject=subject, action=action, overwrite=overwrite)
