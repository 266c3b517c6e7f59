"""`opsledger alerts ...`: alert records and alert-noise analysis."""

from __future__ import annotations

import typer

alerts_app = typer.Typer(help="Alert occurrences and alert-noise analysis.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
