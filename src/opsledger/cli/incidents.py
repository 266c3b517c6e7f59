"""`opsledger incidents ...`: the incident lifecycle, timelines and reviews."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from opsledger.cli.render import err_console, out_console, print_json, table
from opsledger.cli.state import state
from opsledger.errors import UsageError
from opsledger.incidents import service as svc
from opsledger.incidents import views
from opsledger.incidents.review import render_review
from opsledger.incidents.timeline import build_timeline
from opsledger.incidents.timeline import markdown as timeline_markdown

incidents_app = typer.Typer(help="Incidents: lifecycle, timeline, post-incident review.",
                            no_args_is_help=True)

At = Annotated[
    str | None,
    typer.Option("--at", help="When it happened (RFC 3339 with offset). Default: now."),
]
Channels = Annotated[
    list[str] | None,
    typer.Option("--channel", help="Only chat messages of this channel (repeatable)."),
]


class ListFormat(StrEnum):
    table = "table"
    json = "json"


class TimelineFormat(StrEnum):
    markdown = "markdown"
    json = "json"


def _at(value: str | None, what: str = "--at") -> datetime:
    """The time of a hand action: as given, or the clock when a person acts now."""
    return svc.parse_time(value, what) if value is not None else datetime.now(UTC)


def _say(text: str) -> None:
    err_console().print(text, markup=False)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return svc.iso(value) or "-"
    return str(value)


@incidents_app.command("open")
def open_cmd(
    ctx: typer.Context,
    title: Annotated[str, typer.Option("--title", help="What is wrong, in a few words.")],
    severity: Annotated[int, typer.Option("--severity", help="1, 2 or 3 (Sev-1 is the worst).")],
    service: Annotated[str | None, typer.Option("--service", help="Service id.")] = None,
    started_at: Annotated[
        str | None, typer.Option("--started-at", help="Impact start (RFC 3339). Default: now.")
    ] = None,
    detected_at: Annotated[
        str | None, typer.Option("--detected-at", help="When it was detected (RFC 3339).")
    ] = None,
    iid: Annotated[
        str | None, typer.Option("--id", help="Incident id. Default: inc-<YYYYMMDD>-<n>.")
    ] = None,
) -> None:
    """Open an incident; prints its id."""
    started = _at(started_at, "--started-at")
    detected = svc.parse_time(detected_at, "--detected-at") if detected_at else None
    with state(ctx).engine().begin() as conn:
        rec = svc.open_incident(conn, title=title, severity=severity, started_at=started,
                                service=service, detected_at=detected, iid=iid)
    typer.echo(rec["id"])
    _say(f"incident {rec['id']} opened (Sev-{rec['severity']}, started {svc.iso(started)})")


@incidents_app.command("ack")
def ack_cmd(
    ctx: typer.Context,
    iid: Annotated[str, typer.Argument(help="Incident id.")],
    at: At = None,
    by: Annotated[str | None, typer.Option("--by", help="Who acknowledged.")] = None,
) -> None:
    """Record that someone acknowledged the incident."""
    when = _at(at)
    with state(ctx).engine().begin() as conn:
        svc.acknowledge(conn, iid, when, by)
    _say(f"incident {iid} acknowledged at {svc.iso(when)}" + (f" by {by}" if by else ""))


@incidents_app.command("mitigate")
def mitigate_cmd(
    ctx: typer.Context, iid: Annotated[str, typer.Argument(help="Incident id.")], at: At = None
) -> None:
    """Record that the service is restored (the impact ended)."""
    when = _at(at)
    with state(ctx).engine().begin() as conn:
        svc.mitigate(conn, iid, when)
    _say(f"incident {iid} mitigated at {svc.iso(when)}")


@incidents_app.command("resolve")
def resolve_cmd(
    ctx: typer.Context,
    iid: Annotated[str, typer.Argument(help="Incident id.")],
    at: At = None,
    root_cause: Annotated[str | None, typer.Option("--root-cause", help="What caused it.")] = None,
    root_cause_key: Annotated[
        str | None,
        typer.Option("--root-cause-key", help="A key shared by incidents of the same cause."),
    ] = None,
) -> None:
    """Resolve the incident, with its root cause."""
    when = _at(at)
    with state(ctx).engine().begin() as conn:
        svc.resolve(conn, iid, when, root_cause, root_cause_key)
    _say(f"incident {iid} resolved at {svc.iso(when)}")


@incidents_app.command("link")
def link_cmd(
    ctx: typer.Context,
    iid: Annotated[str, typer.Argument(help="Incident id.")],
    alert_ids: Annotated[list[str], typer.Argument(help="Alert ids to link.")],
    move: Annotated[
        bool, typer.Option("--move", help="Also move alerts linked to another incident.")
    ] = False,
) -> None:
    """Link alerts to the incident (all or none)."""
    with state(ctx).engine().begin() as conn:
        results = svc.link_alerts(conn, iid, alert_ids, move)
    for r in results:
        if not r.changed:
            _say(f"alert {r.alert} was linked to {iid} already")
        elif r.previous:
            _say(f"alert {r.alert} moved from {r.previous} to {iid}")
        else:
            _say(f"alert {r.alert} linked to {iid}")


@incidents_app.command("list")
def list_cmd(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option("--service", help="Only this service.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only unresolved incidents.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    fmt: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
) -> None:
    """Incidents, newest first, with their derived status."""
    with state(ctx).engine().connect() as conn:
        recs = views.list_incidents(conn, service, open_only, limit)
    if fmt is ListFormat.json:
        print_json([{**svc.plain(r), "status": svc.status_of(r)} for r in recs])
        return
    headers = ["id", "sev", "status", "service", "started", "title"]
    rows = [[r["id"], r["severity"], svc.status_of(r), r.get("service") or "-",
             _text(r["started_at"]), r.get("title") or ""] for r in recs]
    out_console().print(table(f"{len(rows)} incidents", headers, rows))


@incidents_app.command("show")
def show_cmd(
    ctx: typer.Context,
    iid: Annotated[str, typer.Argument(help="Incident id.")],
    fmt: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
) -> None:
    """An incident: its fields, durations, linked alerts, recurrence and action items."""
    with state(ctx).engine().connect() as conn:
        view = views.incident_view(conn, iid)
    if fmt is ListFormat.json:
        print_json(view)
        return
    inc = view["incident"]
    console = out_console()
    fields = [[k, _text(v)] for k, v in inc.items()] + [["status", view["status"]]]
    console.print(table(f"Incident {iid}", ["field", "value"], fields))
    spans = [[k.replace("_", " "), v["from"], v["to"], svc.duration_text(v["seconds"])]
             for k, v in view["durations"].items()]
    console.print(table("Durations", ["measure", "from", "to", "duration"], spans))
    alerts = [[a["id"], a["name"], a.get("service", "-"), a["fired_at"], a.get("resolved_at", "-")]
              for a in view["alerts"]]
    console.print(table(f"{len(alerts)} linked alerts",
                        ["id", "name", "service", "fired", "resolved"], alerts))
    rec = view["recurrence"]
    if rec["root_cause_key"]:
        prior = [[p["id"], p["started_at"], p.get("title", "")] for p in rec["prior"]]
        console.print(
            f"Recurrence: {len(prior)} prior incident(s) with root cause key "
            f"{rec['root_cause_key']!r} in the {rec['window_hours']} h before the start",
            markup=False,
        )
        if prior:
            console.print(table(None, ["id", "started", "title"], prior))
    else:
        console.print("Recurrence: no root cause key recorded.")
    items = [[a["id"], a.get("title", ""), a.get("owner", "-"), a.get("due", "-"),
              a.get("completed_at", "-")] for a in view["action_items"]]
    console.print(table(f"{len(items)} action items",
                        ["id", "title", "owner", "due", "completed"], items))


@incidents_app.command("timeline")
def timeline_cmd(
    ctx: typer.Context,
    iid: Annotated[str, typer.Argument(help="Incident id.")],
    fmt: Annotated[TimelineFormat, typer.Option("--format")] = TimelineFormat.markdown,
    channel: Channels = None,
) -> None:
    """One time-ordered timeline: every state change of the incident (its stored versions),
    alerts of its services (from 2 h before the start), changes to them (from 24 h before)
    and chat messages."""
    with state(ctx).engine().connect() as conn:
        tl = build_timeline(conn, iid, datetime.now(UTC), channel)
    if fmt is TimelineFormat.json:
        print_json(tl.as_json())
    else:
        sys.stdout.write(timeline_markdown(tl))


@incidents_app.command("review")
def review_cmd(
    ctx: typer.Context,
    iid: Annotated[str, typer.Argument(help="Incident id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: standard output).")
    ] = None,
    channel: Channels = None,
) -> None:
    """The post-incident review in Markdown; its action items table can be edited and read
    back with `opsledger import --from review FILE`."""
    with state(ctx).engine().connect() as conn:
        text = render_review(conn, iid, datetime.now(UTC), channel)
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--output {output}: {exc.strerror or exc}") from None
        _say(f"review of {iid} written to {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")
