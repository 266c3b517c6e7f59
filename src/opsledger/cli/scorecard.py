"""`opsledger scorecard` and `opsledger kpis list|explain`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from opsledger.cli.render import (
    STATUS_STYLE,
    csv_text,
    fmt_number,
    markdown,
    out_console,
    print_json,
    table,
)
from opsledger.cli.state import state
from opsledger.core.periods import Period, resolve
from opsledger.errors import UsageError
from opsledger.kpis.engine import evaluate, period_json, scorecard
from opsledger.kpis.model import Scope
from opsledger.kpis.registry import KPIS, get

FORMATS = ("table", "json", "markdown", "csv")
PeriodOpt = Annotated[
    str | None,
    typer.Option(
        "--period", help="2026-10, 2026-Q4, 2026-W40 or 2026 (default: the last full month)."
    ),
]
FromOpt = Annotated[str | None, typer.Option("--from", help="Start date (inclusive).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="End date (exclusive).")]
TeamOpt = Annotated[str | None, typer.Option("--team", help="Narrow to a team.")]
ServiceOpt = Annotated[str | None, typer.Option("--service", help="Narrow to a service.")]


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")


def _rows(data: dict[str, Any]) -> tuple[list[str], list[list[Any]], list[str]]:
    kpis = data["kpis"]
    trend_labels = [t["period"] for t in kpis[0].get("trend", [])][::-1] if kpis else []
    headers = ["kpi", *trend_labels, "value", "unit", "target", "status", "count"]
    rows, statuses = [], []
    for k in kpis:
        trend = [t["value"] for t in k.get("trend", [])][::-1]
        rows.append(
            [k["id"], *trend, k["value"], k["unit"], k["target"]["text"], k["status"], k["count"]]
        )
        statuses.append(k["status"])
    return headers, rows, statuses


def print_scorecard(
    ctx: typer.Context, period: Period, team: str | None, service: str | None, fmt: str, trend: int
) -> None:
    st = state(ctx)
    policy = st.policy()
    with st.engine().connect() as conn:
        data = scorecard(conn, period, Scope(team, service), policy, trend)
    if fmt == "json":
        print_json(data)
        return
    headers, rows, statuses = _rows(data)
    numeric = [h not in ("kpi", "unit", "target", "status") for h in headers]
    if fmt == "markdown":
        sys.stdout.write(f"## Scorecard {data['period']['label']}\n\n")
        sys.stdout.write(markdown(headers, rows, numeric))
    elif fmt == "csv":
        sys.stdout.write(csv_text(headers, rows))
    else:
        scope = ", ".join(f"{k} {v}" for k, v in data["scope"].items() if v) or "all"
        styles = [
            [STATUS_STYLE.get(s) if h == "status" else None for h in headers] for s in statuses
        ]
        title = f"Scorecard {data['period']['label']} (scope: {scope})"
        out_console().print(table(title, headers, rows, numeric, styles))
        for k in data["kpis"]:
            if k.get("error"):
                out_console().print(f"{k['id']}: {k['error']}", markup=False)
            if k["id"] == "backup_success_rate" and k["count"]:
                out_console().print(
                    f"backup silent failures: {k['silent_failures']} "
                    f"(target 0, {k['silent_failures_status']})",
                    markup=False,
                )


def scorecard_cmd(
    ctx: typer.Context,
    period: PeriodOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    team: TeamOpt = None,
    service: ServiceOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, markdown or csv.")] = "table",
    trend: Annotated[
        int, typer.Option("--trend", min=0, max=36, help="Add the N previous periods.")
    ] = 0,
) -> None:
    """Every KPI of the scorecard for a period, with target, status and count."""
    _check_format(fmt)
    p = resolve(period, start, end, datetime.now(UTC))
    print_scorecard(ctx, p, team, service, fmt, trend)


kpis_app = typer.Typer(
    help="The KPI registry: list the KPIs, explain a figure.", no_args_is_help=True
)


@kpis_app.command("list")
def list_cmd(
    fmt: Annotated[str, typer.Option("--format", help="table, json, markdown or csv.")] = "table",
) -> None:
    """Every KPI: id, unit, default target and formula."""
    _check_format(fmt)
    headers = ["id", "title", "unit", "target", "records that count", "formula"]
    rows = [[k.id, k.title, k.unit, k.target.text(), k.records, k.formula] for k in KPIS]
    if fmt == "json":
        print_json([dict(zip(headers, r, strict=True)) for r in rows])
    elif fmt == "markdown":
        sys.stdout.write(markdown(headers, rows))
    elif fmt == "csv":
        sys.stdout.write(csv_text(headers, rows))
    else:
        out_console().print(table("KPIs", headers[:4], [r[:4] for r in rows]))


@kpis_app.command("explain")
def explain_cmd(
    ctx: typer.Context,
    kpi_id: Annotated[str, typer.Argument(metavar="ID", help="KPI id, e.g. mttr_sev1.")],
    period: PeriodOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    team: TeamOpt = None,
    service: ServiceOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, markdown or csv.")] = "table",
) -> None:
    """The records behind a figure and how each counted."""
    _check_format(fmt)
    kpi = get(kpi_id)
    p = resolve(period, start, end, datetime.now(UTC))
    st = state(ctx)
    with st.engine().connect() as conn:
        fig = evaluate(conn, kpi, p, Scope(team, service), st.policy(), explain=True)
    evidence = fig.outcome.evidence or []
    if fig.outcome.error:
        raise UsageError(f"{kpi.id} {p.label}: {fig.outcome.error}")
    headers = ["kind", "id", "counted as", "contribution", "note"]
    rows = [[e.kind, e.id, e.role, e.contribution, e.note] for e in evidence]
    if fmt == "json":
        out = {
            "period": period_json(p),
            "scope": Scope(team, service).as_json(),
            "kpi": fig.as_json(),
            "formula": kpi.formula,
            "records": kpi.records,
            "evidence": [
                {
                    "kind": e.kind,
                    "id": e.id,
                    "role": e.role,
                    "contribution": e.contribution,
                    "note": e.note,
                }
                for e in evidence
            ],
        }
        print_json(out)
        return
    if fmt == "csv":
        sys.stdout.write(csv_text(headers, rows))
        return
    head = (
        f"{kpi.id} {p.label}: {fmt_number(fig.outcome.value)} {kpi.unit} "
        f"(target {fig.target.text()}, {fig.status}, count {fig.outcome.count})\n"
        f"formula: {kpi.formula}\nrecords: {kpi.records}\n"
    )
    if fmt == "markdown":
        sys.stdout.write(f"## {head}\n" + markdown(headers, rows, [False] * 3 + [True, False]))
        return
    con = out_console()
    con.print(head, markup=False)
    con.print(table(None, headers, rows, [False, False, False, True, False]))


def register(app: typer.Typer) -> None:
    app.command("scorecard")(scorecard_cmd)
    app.add_typer(kpis_app, name="kpis")
