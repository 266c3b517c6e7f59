"""The `opsledger` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from opsledger import __version__
from opsledger.cli import alerts, incidents, ledger, scorecard, server
from opsledger.cli.render import err_console
from opsledger.cli.state import State
from opsledger.errors import OpsledgerError
from opsledger.settings import Settings

app = typer.Typer(
    name="opsledger",
    help="The system of record and KPI engine for systems engineering and SRE teams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"opsledger {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL (sqlite:///PATH or postgresql://...). "
            "Default: OPSLEDGER_DATABASE_URL, else an SQLite file in the user data directory.",
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Policy file (opsledger.toml). Default: OPSLEDGER_POLICY."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    ctx.obj = State(settings, policy)
    ctx.call_on_close(ctx.obj.close)


ledger.register(app)
scorecard.register(app)
server.register(app)
alerts.register(app)
incidents.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code. Maps opsledger errors to messages once:
    0 success, 2 bad input or usage, 1 internal error."""
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int):  # a typer.Exit, returned in non-standalone mode
            return code
    except OpsledgerError as exc:
        err_console().print(Text.assemble(("error: ", "bold red"), str(exc)))
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console().print("aborted")
        return 1
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console().print(f"error: {exc.format_message()}", markup=False)
        return exc.exit_code
    return 0


def run() -> None:
    """Console entry point."""
    sys.exit(main())
