"""The post-incident review (Markdown), and reading its action items back.

The review is written for people and read back by `opsledger import --from review FILE`.
What the reader relies on (documented in docs/commands/incidents.md):

- a line `# Post-incident review: <incident id>` names the incident;
- the first Markdown table after the heading `## Action items` holds the action items, with
  a header row naming its columns (any order, case-insensitive): `title` (required), `id`,
  `owner`, `due` (YYYY-MM-DD) and `completed` (an RFC 3339 timestamp with an offset);
- a row with an empty id is a new item: it gets `<incident>-ai-<n>`, numbered after the
  highest such number in the table; ids written in the table are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from opsledger.incidents.service import (
    duration_text,
    get_record,
    iso,
    require_incident,
    status_of,
)
from opsledger.incidents.timeline import build_timeline, markdown_table
from opsledger.incidents.views import action_items, durations, incident_view, prior_incidents

HEADING = "# Post-incident review: "
ITEMS_HEADING = "## Action items"
COLUMNS = ("id", "title", "owner", "due", "completed")
MEASURES = (
    ("time_to_detect", "Time to detect"),
    ("time_to_acknowledge", "Time to acknowledge"),
    ("time_to_mitigate", "Time to mitigate"),
    ("time_to_resolve", "Time to resolve"),
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = iso(value) or "" if isinstance(value, datetime) else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value is not None else "-"


def render_review(
    conn: Connection, iid: str, now: datetime, channels: list[str] | None = None
) -> str:
    inc = require_incident(conn, iid)
    view = incident_view(conn, iid)
    title = inc.get("title") or "(untitled)"
    svc: str | None = inc.get("service")
    out = [f"{HEADING}{iid}", "", f"**{title}**", ""]
    facts = [
        ("Severity", f"Sev-{inc['severity']}"),
        ("Service", svc or "-"),
        ("Status", status_of(inc)),
        ("Started", _when(inc["started_at"])),
        ("Resolved", _when(inc.get("resolved_at"))),
        ("Linked alerts", str(len(view["alerts"]))),
    ]
    cause = inc.get("caused_by_change")
    if cause:
        change = get_record(conn, "change", cause)
        shown = f"{cause} ({change['title']})" if change and change.get("title") else cause
        facts.append(("Caused by change", shown))
    out += [f"- {k}: {v}" for k, v in facts] + [""]

    spans = durations(inc)
    restored = inc.get("mitigated_at") or inc.get("resolved_at")
    lasted = (
        f"was restored after {duration_text((restored - inc['started_at']).total_seconds())}"
        if restored is not None else "is not restored yet"
    )
    out += ["## Summary", ""]
    out.append(
        f"Sev-{inc['severity']} incident{' on ' + svc if svc else ''}: {title}. The impact "
        f"started at {_when(inc['started_at'])} and the service {lasted}; "
        f"{len(view['alerts'])} alert(s) linked."
        + (f" Caused by change {cause}." if cause else "")
    )
    out += ["", "## Impact", "", "| measure | from | to | duration |", "|---|---|---|---:|"]
    for key, label in MEASURES:
        s = spans[key]
        a, b = inc.get(s["from"]), inc.get(s["to"])
        out.append(
            f"| {label} | {s['from'].removesuffix('_at')} {_when(a)} | "
            f"{s['to'].removesuffix('_at')} {_when(b)} | {duration_text(s['seconds'])} |"
        )
    out += [
        "",
        "To detect: detected - started. To acknowledge: acknowledged - detected (started when "
        "no detection time is recorded). To mitigate: mitigated - started. To resolve: "
        "resolved - started. `-`: not recorded yet.",
        "",
        "## Timeline",
        "",
        markdown_table(build_timeline(conn, iid, now, channels)).rstrip("\n"),
        "",
        "## Root cause",
        "",
        inc.get("root_cause") or "Not recorded yet.",
        "",
    ]
    rc_key = inc.get("root_cause_key")
    if rc_key:
        prior = prior_incidents(conn, inc)
        out.append(f"Root cause key: `{rc_key}`. Recurrence: {len(prior)} prior incident(s) with "
                   "this key in the 720 h before the start"
                   + (": " + ", ".join(f"{p['id']} ({iso(p['started_at'])})" for p in prior)
                      if prior else "") + ".")
        out.append("")
    out += [
        ITEMS_HEADING,
        "",
        "Add a row with an empty id for a new item, then read the table back with "
        "`opsledger import --from review FILE`.",
        "",
        "| id | title | owner | due | completed |",
        "|---|---|---|---|---|",
    ]
    for ai in action_items(conn, iid):
        out.append("| " + " | ".join(_cell(ai.get(f)) for f in
                                      ("id", "title", "owner", "due", "completed_at")) + " |")
    return "\n".join(out) + "\n"


# --- reading the action items back ---------------------------------------------------------------


class ReviewError(ValueError):
    def __init__(self, line: int | None, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}" if line else reason)


_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_SPLIT = re.compile(r"(?<!\\)\|")


def _cells(line: str) -> list[str]:
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    return [c.strip().replace("\\|", "|") for c in _SPLIT.split(text)]


@dataclass(frozen=True)
class _Row:
    line: int
    cells: dict[str, str]


def _find_table(lines: list[str]) -> tuple[int, list[str], list[_Row]]:
    start = next((i for i, t in enumerate(lines) if t.strip().lower() == ITEMS_HEADING.lower()),
                 None)
    if start is None:
        raise ReviewError(None, f"no '{ITEMS_HEADING}' heading")
    i = start + 1
    while i < len(lines) and not lines[i].lstrip().startswith("|"):
        if lines[i].startswith("#"):
            raise ReviewError(i + 1, f"no table under '{ITEMS_HEADING}' before this heading")
        i += 1
    if i >= len(lines):
        raise ReviewError(None, f"no table under '{ITEMS_HEADING}'")
    header_line = i + 1
    header = [h.lower() for h in _cells(lines[i])]
    for h in header:
        if h not in COLUMNS:
            raise ReviewError(header_line, f"unknown column {h!r} (columns: {', '.join(COLUMNS)})")
    if "title" not in header:
        raise ReviewError(header_line, "the action items table needs a 'title' column")
    if len(set(header)) != len(header):
        raise ReviewError(header_line, "a column is named twice")
    if i + 1 >= len(lines) or not _SEPARATOR.match(lines[i + 1].strip()):
        raise ReviewError(i + 2, "expected the table's separator row (| --- | --- |)")
    rows: list[_Row] = []
    for j in range(i + 2, len(lines)):
        text = lines[j].strip()
        if not text.startswith("|"):
            break
        cells = _cells(text)
        if len(cells) != len(header):
            raise ReviewError(j + 1, f"{len(cells)} cells, the header has {len(header)}")
        if any(cells):
            rows.append(_Row(j + 1, dict(zip(header, cells, strict=True))))
    return header_line, header, rows


def _due(text: str, line: int) -> str | None:
    if not text:
        return None
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    raise ReviewError(line, f"column 'due': {text!r} is not a date (write YYYY-MM-DD)")


def _completed(text: str, line: int) -> str | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ReviewError(
            line,
            f"column 'completed': {text!r} is not an RFC 3339 timestamp with an offset "
            "(write e.g. 2026-10-20T16:00:00Z, or leave it empty)",
        )
    return iso(value)


def _incident_id(lines: list[str]) -> str:
    for n, line in enumerate(lines, 1):
        if line.startswith(HEADING):
            iid = line[len(HEADING):].strip()
            if not iid or " " in iid:
                raise ReviewError(n, f"'{HEADING.strip()}' must be followed by one incident id")
            return iid
    raise ReviewError(None, f"no '{HEADING}<incident id>' heading names the incident")


def parse_review(text: str) -> list[dict[str, Any]]:
    """The action_item records of a review (pure; raises ReviewError naming the line)."""
    lines = text.splitlines()
    iid = _incident_id(lines)
    _, _, rows = _find_table(lines)
    pattern = re.compile(re.escape(iid) + r"-ai-(\d+)$")
    seen: dict[str, int] = {}
    highest = 0
    for row in rows:
        rid = row.cells.get("id", "")
        if rid:
            if rid in seen:
                raise ReviewError(row.line, f"id {rid!r} is used on line {seen[rid]} already")
            seen[rid] = row.line
            m = pattern.match(rid)
            if m:
                highest = max(highest, int(m.group(1)))
    records = []
    for row in rows:
        title = row.cells.get("title", "")
        if not title:
            raise ReviewError(row.line, "column 'title' is empty")
        rid = row.cells.get("id", "")
        if not rid:
            highest += 1
            rid = f"{iid}-ai-{highest}"
        rec: dict[str, Any] = {"kind": "action_item", "id": rid, "incident": iid, "title": title}
        if row.cells.get("owner"):
            rec["owner"] = row.cells["owner"]
        due = _due(row.cells.get("due", ""), row.line)
        if due:
            rec["due"] = due
        done = _completed(row.cells.get("completed", ""), row.line)
        if done:
            rec["completed_at"] = done
        records.append(rec)
    return records
