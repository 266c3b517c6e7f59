"""`opsledger alerts ...`: alert records and alert-noise analysis."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from opsledger.alerts import list_alerts, parse_timestamp
from opsledger.alerts.noise import NoiseReport, analyse
from opsledger.cli.render import (
    STATUS_STYLE,
    fmt_number,
    markdown,
    out_console,
    print_json,
    table,
)
from opsledger.cli.scorecard import FromOpt, PeriodOpt, ServiceOpt, TeamOpt, ToOpt
from opsledger.cli.state import state
from opsledger.core.periods import resolve
from opsledger.errors import UsageError
from opsledger.kpis.model import Ctx, Scope

alerts_app = typer.Typer(help="Alert occurrences and alert-noise analysis.", no_args_is_help=True)

LIST_FORMATS = ("table", "json")
NOISE_FORMATS = ("table", "json", "markdown")
LIST_COLUMNS = ("id", "name", "service", "severity", "fired_at", "resolved_at",
                "acknowledged_at", "actionable", "incident", "source")


def _check_format(fmt: str, allowed: tuple[str, ...]) -> None:
    if fmt not in allowed:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(allowed)}")


@alerts_app.command("list")
def list_cmd(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="Only this alert rule.")] = None,
    service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="fired_at at or after (RFC 3339 with offset).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="fired_at before (RFC 3339 with offset).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N alerts.")] = 100,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Alert occurrences with their native fields, newest first."""
    _check_format(fmt, LIST_FORMATS)
    start = parse_timestamp(since, "--since") if since is not None else None
    end = parse_timestamp(until, "--until") if until is not None else None
    if start is not None and end is not None and end <= start:
        raise UsageError(f"--until {until} must be after --since {since}")
    with state(ctx).engine().connect() as conn:
        items = list_alerts(conn, name=name, service=service, since=start, until=end,
                            limit=limit)
    if fmt == "json":
        print_json(items)
        return
    rows = [[_cell(item.get(c)) for c in LIST_COLUMNS] for item in items]
    out_console().print(table(f"Alerts ({len(items)}, newest first)", LIST_COLUMNS, rows))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@alerts_app.command("noise")
def noise_cmd(
    ctx: typer.Context,
    period: PeriodOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    team: TeamOpt = None,
    service: ServiceOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or markdown.")] = "table",
) -> None:
    """Per alert rule: occurrences, actionable share, flapping, durations, storms, runbook
    gaps; then ranked recommendations with the expected change in the noise ratio."""
    _check_format(fmt, NOISE_FORMATS)
    p = resolve(period, start, end, datetime.now(UTC))
    st = state(ctx)
    policy = st.policy()
    with st.engine().connect() as conn:
        report = analyse(Ctx(conn, p, Scope(team, service), policy))
    if fmt == "json":
        print_json(report.as_json())
    elif fmt == "markdown":
        sys.stdout.write(noise_markdown(report))
    else:
        _noise_table(report)


# --- rendering ------------------------------------------------------------------------------

RULE_HEADERS = ["rule", "alerts", "actionable %", "flapping", "median min", "quick unacked %",
                "storms", "biggest storm", "no runbook %"]
RULE_NUMERIC = [False] + [True] * 8
REC_HEADERS = ["#", "action", "rule", "noise ratio before -> after", "change (points)",
               "evidence"]
REC_NUMERIC = [True, False, False, True, True, False]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} %"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _rule_rows(report: NoiseReport) -> list[list[Any]]:
    return [
        [r.name, r.occurrences, _num(r.actionable_percent), r.flapping,
         _num(r.median_duration_minutes), _num(r.quick_unacked_percent),
         r.storms, r.biggest_storm or "-", _num(r.missing_runbook_percent)]
        for r in report.rules
    ]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _rec_rows(report: NoiseReport) -> list[list[Any]]:
    return [
        [rec.rank, rec.title, rec.rule, f"{_pct(rec.before)} -> {_pct(rec.after)}",
         _points(rec.change), rec.evidence]
        for rec in report.recommendations
    ]


def _headline(report: NoiseReport) -> str:
    scope = ", ".join(f"{k} {v}" for k, v in report.scope.as_json().items() if v) or "all"
    target = report.target.get("text", "")
    return (
        f"Alert noise {report.period.label} (scope: {scope}): "
        f"{fmt_number(report.occurrences)} alerts, {fmt_number(report.non_actionable)} not "
        f"actionable, noise ratio {_pct(report.noise_ratio)} (target {target}, {report.status})"
    )


def _settings_line(report: NoiseReport) -> str:
    s = report.windows
    return (
        f"flapping: re-fired within {s['flap_minutes']} min of resolving; quick: auto-resolved "
        f"in under {s['quick_resolve_minutes']} min unacknowledged; storm: "
        f">= {s['storm_count']} in {s['storm_minutes']} min"
    )


def _noise_table(report: NoiseReport) -> None:
    con = out_console()
    con.print(_headline(report), markup=False,
              style=STATUS_STYLE.get(report.status) if report.status == "missed" else None)
    con.print(_settings_line(report), markup=False)
    if not report.rules:
        con.print("no alerts fired in this period and scope", markup=False)
        return
    con.print()
    con.print(table("Rules (noisiest first)", RULE_HEADERS, _escape(_rule_rows(report)),
                    RULE_NUMERIC))
    con.print()
    if not report.recommendations:
        con.print("no recommendations", markup=False)
        return
    con.print(table("Recommendations (ranked; each alone, on the overall noise ratio)",
                    REC_HEADERS, _escape(_rec_rows(report)), REC_NUMERIC))


def _escape(rows: list[list[Any]]) -> list[list[Any]]:
    """Rule names and evidence are data, not Rich markup."""
    from rich.markup import escape

    return [[escape(c) if isinstance(c, str) else c for c in row] for row in rows]


def noise_markdown(report: NoiseReport) -> str:
    parts = [f"## {_headline(report)}\n\n", f"{_settings_line(report)}\n\n"]
    if not report.rules:
        parts.append("No alerts fired in this period and scope.\n")
        return "".join(parts)
    parts.append("### Rules (noisiest first)\n\n")
    parts.append(markdown(RULE_HEADERS, _rule_rows(report), RULE_NUMERIC))
    parts.append("\n### Recommendations (ranked)\n\n")
    if report.recommendations:
        parts.append(markdown(REC_HEADERS, _rec_rows(report), REC_NUMERIC))
    else:
        parts.append("No recommendations.\n")
    return "".join(parts)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
