"""Commands that move records: import, export, rebuild, check and demo."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine

from opsledger.cli.render import csv_text, err_console, markdown, out_console, print_json, table
from opsledger.cli.state import state
from opsledger.errors import UsageError
from opsledger.ingest.importer import BATCH, ImportResult, apply_entries, import_source
from opsledger.ingest.reader import Entry, entries_of_lines, open_source
from opsledger.ingest.replay import export_csv, export_jsonl, rebuild
from opsledger.integrity import run_checks
from opsledger.records.fast import decoder
from opsledger.records.spec import KINDS, kind_for_name


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


def _summary_rows(results: list[ImportResult]) -> list[list[object]]:
    rows: list[list[object]] = []
    for r in results:
        for kind in (k.name for k in KINDS):
            c = r.counts.get(kind)
            if c:
                rows.append([r.source, kind, c.inserted, c.replaced, c.unchanged])
    return rows


def import_cmd(
    ctx: typer.Context,
    files: Annotated[
        list[str],
        typer.Argument(help="Files (.jsonl, .ndjson, .csv) or - for JSON Lines on standard input."),
    ],
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", help="Kind of the records in CSV files (default: from the file name)."
        ),
    ] = None,
    lenient: Annotated[
        bool,
        typer.Option(
            "--lenient", help="Accept unknown fields; they are kept in the raw event only."
        ),
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="Summary: table or json.")] = "table",
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Read a vendor export through "
            "a connector (pagerduty, opsgenie, slack, "
            "review ...) instead of native records.",
        ),
    ] = None,
) -> None:
    """Import native records. Each file is all-or-nothing; importing twice changes nothing."""
    if kind is not None and kind_for_name(kind) is None:
        raise UsageError(f"--kind {kind!r}: unknown kind")
    st = state(ctx)
    engine = st.engine()
    results: list[ImportResult] = []
    failed: list[str] = []
    if source is not None:
        _import_vendor(engine, source, files, results, failed)
        files = []
    show = sys.stderr.isatty()
    if fmt not in ("table", "json"):
        raise UsageError(f"--format {fmt!r}: use table or json")
    for path in files:
        try:
            src = open_source(path, kind)
        except UsageError as exc:
            err_console().print(f"error: {exc}", markup=False)
            failed.append(path)
            continue
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=err_console(),
                transient=True,
                disable=not show or src.size is None,
            ) as bar:
                task = bar.add_task(f"importing {src.name}", total=src.size)

                def progress(pos: int, t: TaskID = task, b: Progress = bar) -> None:
                    b.update(t, completed=pos)

                with engine.begin() as conn:
                    results.append(import_source(conn, src, lenient, progress))
        except UsageError as exc:
            err_console().print(f"error: {exc}", markup=False)
            failed.append(src.name)
    rows = _summary_rows(results)
    if fmt == "json":
        print_json(
            {
                "imported": [
                    {"source": r.source, "counts": {k: vars(c) for k, c in r.counts.items()}}
                    for r in results
                ],
                "failed": failed,
            }
        )
    else:
        out_console().print(
            table(
                "Imported",
                ["source", "kind", "inserted", "replaced", "unchanged"],
                rows,
                [False, False, True, True, True],
            )
        )
    if failed:
        raise typer.Exit(2)


def _import_vendor(
    engine: Engine, source: str, paths: list[str], results: list[ImportResult], failed: list[str]
) -> None:
    from opsledger.connectors.base import connectors, get_connector
    from opsledger.ingest.inbound import ingest_path

    connector = get_connector(source)
    if connector is None or connector.parse_path is None:
        known = sorted(n for n, c in connectors().items() if c.parse_path is not None)
        raise UsageError(
            f"--from {source!r}: no file connector of that name (known: "
            f"{', '.join(known) or 'none'})"
        )
    for path in paths:
        try:
            with engine.begin() as conn:
                results.append(ingest_path(conn, connector, Path(path)))
        except UsageError as exc:
            err_console().print(f"error: {exc}", markup=False)
            failed.append(path)


def export_cmd(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option("--kind", help="Record kind to export.")],
    fmt: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.jsonl,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: standard output).")
    ] = None,
) -> None:
    """Export every record of a kind as JSON Lines or CSV (round-trips with import)."""
    spec = kind_for_name(kind)
    if spec is None:
        raise UsageError(
            f"--kind {kind!r}: unknown kind (known: {', '.join(k.name for k in KINDS)})"
        )
    engine = state(ctx).engine()
    with engine.connect() as conn:
        chunks = (
            export_jsonl(conn, spec.name)
            if fmt is ExportFormat.jsonl
            else export_csv(conn, spec.name)
        )
        if output is None:
            for chunk in chunks:
                sys.stdout.write(chunk)
        else:
            with output.open("w", encoding="utf-8", newline="") as fh:
                for chunk in chunks:
                    fh.write(chunk)


def rebuild_cmd(ctx: typer.Context) -> None:
    """Re-derive every record table from the append-only raw log."""
    engine = state(ctx).engine()
    with engine.begin() as conn:
        counts = rebuild(conn)
    out_console().print(
        table(
            "Rebuilt from the raw log",
            ["kind", "records"],
            [[k, n] for k, n in counts.items() if n],
            [False, True],
        )
    )


def check_cmd(
    ctx: typer.Context,
    fmt: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.table,
) -> None:
    """Integrity report: unknown references, services without a team, stale runbooks."""
    engine = state(ctx).engine()
    with engine.connect() as conn:
        findings = run_checks(conn, datetime.now(UTC))
    headers = ["check", "kind", "id", "field", "detail"]
    rows = [[f.check, f.kind, f.id, f.field or "", f.detail] for f in findings]
    if fmt is ReportFormat.json:
        counts: dict[str, int] = {}
        for f in findings:
            counts[f.check] = counts.get(f.check, 0) + 1
        print_json({"findings": [f.as_json() for f in findings], "counts": counts})
    elif fmt is ReportFormat.markdown:
        sys.stdout.write(markdown(headers, rows))
    elif fmt is ReportFormat.csv:
        sys.stdout.write(csv_text(headers, rows))
    elif not rows:
        out_console().print("No integrity problems found.")
    else:
        out_console().print(table(f"{len(rows)} integrity findings", headers, rows))


def _demo_entries(seed: int, scale: float, end: date) -> Iterator[list[Entry]]:
    """The generated records as JSON lines, validated as an imported file's are (the fast
    path, pydantic where it declines), in blocks."""
    from opsledger.demo.generator import generate

    fast = decoder(False)
    records = generate(seed=seed, scale=scale, end=end)
    first = 1
    while block := list(islice(records, BATCH)):
        lines = [orjson.dumps(rec) for rec in block]
        yield entries_of_lines(fast, lines, first, "demo", False)
        first += len(block)


def demo_cmd(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    scale: Annotated[float, typer.Option(help="1 = about 120 services, 8 teams, 600 hosts.")] = 1.0,
    end: Annotated[
        str | None,
        typer.Option(help="First day after the 12 months (default: the first day of this month)."),
    ] = None,
) -> None:
    """Import 12 months of a realistic demo organisation; print last month's scorecard."""
    from opsledger.cli.scorecard import print_scorecard
    from opsledger.core.periods import month

    if scale <= 0 or scale > 100:
        raise UsageError("--scale must be in (0, 100]")
    today = datetime.now(UTC).date()
    try:
        end_day = date.fromisoformat(end) if end else today.replace(day=1)
    except ValueError:
        raise UsageError(f"--end {end!r} is not a date (YYYY-MM-DD)") from None
    engine = state(ctx).engine()
    show = sys.stderr.isatty()
    with Progress(
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} records"),
        console=err_console(),
        transient=True,
        disable=not show,
    ) as bar:
        task = bar.add_task("generating and importing the demo", total=None)

        def counted() -> Iterator[list[Entry]]:
            done = 0
            for block in _demo_entries(seed, scale, end_day):
                done += len(block)
                bar.update(task, completed=done)
                yield block

        with engine.begin() as conn:
            result = apply_entries(conn, counted(), f"demo seed={seed} scale={scale}")
    t = result.totals()
    err_console().print(
        f"demo: {t.inserted:,} inserted, {t.replaced:,} replaced, "
        f"{t.unchanged:,} unchanged records",
        markup=False,
    )
    y, m = (end_day.year, end_day.month - 1) if end_day.month > 1 else (end_day.year - 1, 12)
    print_scorecard(ctx, month(y, m), None, None, ReportFormat.table.value, 0)


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
    app.command("rebuild")(rebuild_cmd)
    app.command("check")(check_cmd)
    app.command("demo")(demo_cmd)
