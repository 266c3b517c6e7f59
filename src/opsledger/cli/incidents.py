"""`opsledger incidents ...`: the incident lifecycle, timelines and reviews."""

from __future__ import annotations

import typer

incidents_app = typer.Typer(help="Incidents: lifecycle, timeline, post-incident review.",
                            no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")
