"""`opsledger serve` and `opsledger tokens create|list|revoke`."""

from __future__ import annotations

from typing import Annotated

import typer

from opsledger.access import create_token, list_tokens, revoke_token
from opsledger.cli.render import err_console, out_console, print_json, table
from opsledger.cli.state import state
from opsledger.errors import UsageError

tokens_app = typer.Typer(
    help="API tokens: create (shown once), list, revoke.", no_args_is_help=True
)


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A name for the token's holder.")],
    scope: Annotated[str, typer.Option("--scope", help="ingest, read or admin.")],
) -> None:
    """Create a token and print it once; only its hash is stored."""
    with state(ctx).engine().begin() as conn:
        token = create_token(conn, name, scope)
    typer.echo(token)
    err_console().print(f"token '{name}' ({scope}) created; it is not shown again", markup=False)


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Every token: name, scope, prefix, created, revoked."""
    with state(ctx).engine().connect() as conn:
        tokens = list_tokens(conn)
    rows = [
        [
            t.name,
            t.scope,
            t.prefix + "…",
            t.created_at.isoformat(timespec="seconds"),
            t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "",
        ]
        for t in tokens
    ]
    headers = ["name", "scope", "prefix", "created", "revoked"]
    if fmt == "json":
        print_json([dict(zip(headers, r, strict=True)) for r in rows])
    else:
        out_console().print(table("API tokens", headers, rows))


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the token to revoke.")],
) -> None:
    """Revoke a token at once (a running server refuses it from then on)."""
    with state(ctx).engine().begin() as conn:
        revoke_token(conn, name)
    err_console().print(f"token '{name}' revoked", markup=False)


def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the REST API, the webhook receivers and /healthz (uvicorn)."""
    import os

    import uvicorn

    from opsledger.api.app import create_app
    from opsledger.api.http import OneWriteHttpToolsProtocol

    if workers < 1:
        raise UsageError(f"--workers {workers}: give 1 or more")
    st = state(ctx)
    settings = st.settings.model_copy(update={"policy": st.policy_path or st.settings.policy})
    app = create_app(settings)  # migrates and checks the policy once, before any worker
    err_console().print(
        f"opsledger serving on http://{host}:{port} (API under /api/v1, docs at /docs)",
        markup=False,
    )
    if workers == 1:
        uvicorn.run(
            app, host=host, port=port, log_level="warning", access_log=False,
            http=OneWriteHttpToolsProtocol,
        )
        return
    # uvicorn starts each worker process from an import string; they read the settings
    # from the environment
    app.state.engine.dispose()
    os.environ["OPSLEDGER_DATABASE_URL"] = settings.resolved_database_url()
    if settings.policy is not None:
        os.environ["OPSLEDGER_POLICY"] = str(settings.policy)
    uvicorn.run(
        "opsledger.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=OneWriteHttpToolsProtocol,
        log_level="warning",
        access_log=False,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
    app.add_typer(tokens_app, name="tokens")
