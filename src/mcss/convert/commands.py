"""``mcss convert``: one Typer sub-app, one command per source of real data."""

from __future__ import annotations

import typer

convert_app = typer.Typer(
    no_args_is_help=True,
    help="Convert real data (Human3.6M, MPI-INF-3DHP, your own synchronised footage) into "
    "the mcss dataset format.",
)
