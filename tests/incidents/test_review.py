"""The post-incident review, and its action items read back with `import --from review`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.incidents.review import ReviewError, parse_review
from tests.conftest import load
from tests.incidents.helpers import api, export_all, records_of

INC = {
    "kind": "incident", "id": "inc-20261002-1", "title": "Checkout returns 500s", "severity": 1,
    "service": "api", "started_at": "2026-10-02T10:00:00Z",
    "detected_at": "2026-10-02T10:05:00Z", "acknowledged_at": "2026-10-02T10:12:00Z",
    "acknowledged_by": "alice", "mitigated_at": "2026-10-02T10:40:00Z",
    "resolved_at": "2026-10-02T11:30:00Z", "root_cause": "The DB connection pool was too small.",
    "root_cause_key": "db-pool", "caused_by_change": "chg-7",
}
RECORDS = [
    {"kind": "service", "id": "api", "tier": "critical"},
    INC,
    {"kind": "incident", "id": "inc-20260920-1", "severity": 2,
     "started_at": "2026-09-20T08:00:00Z", "root_cause_key": "db-pool"},
    {"kind": "change", "id": "chg-7", "title": "Deploy api v2", "service": "api",
     "type": "normal", "deployed_at": "2026-10-02T09:50:00Z", "outcome": "rolled_back"},
    {"kind": "alert", "id": "a1", "name": "HighErrorRate", "service": "api",
     "severity": "critical", "fired_at": "2026-10-02T10:01:00Z", "incident": "inc-20261002-1"},
    {"kind": "action_item", "id": "inc-20261002-1-ai-1", "incident": "inc-20261002-1",
     "title": "Alert on pool | saturation", "owner": "bob", "due": "2026-10-20"},
    {"kind": "action_item", "id": "ai-external", "incident": "inc-20261002-1",
     "title": "Load test checkout", "completed_at": "2026-10-10T16:00:00Z"},
]
IID = "inc-20261002-1"


def test_review_markdown(cli: Any, engine: Engine) -> None:
    load(engine, RECORDS)
    code, out, err = cli("incidents", "review", IID)
    assert code == 0, err
    assert out.startswith(f"# Post-incident review: {IID}\n\n**Checkout returns 500s**\n\n")
    for line in [
        "- Severity: Sev-1",
        "- Service: api",
        "- Status: resolved",
        "- Started: 2026-10-02 10:00:00 UTC",
        "- Resolved: 2026-10-02 11:30:00 UTC",
        "- Linked alerts: 1",
        "- Caused by change: chg-7 (Deploy api v2)",
        "## Summary",
        "Sev-1 incident on api: Checkout returns 500s. The impact started at 2026-10-02 "
        "10:00:00 UTC and the service was restored after 40 min; 1 alert(s) linked. Caused by "
        "change chg-7.",
        "| measure | from | to | duration |",
        "| Time to detect | started 2026-10-02 10:00:00 UTC | detected 2026-10-02 10:05:00 UTC "
        "| 5 min |",
        "| Time to acknowledge | detected 2026-10-02 10:05:00 UTC | acknowledged 2026-10-02 "
        "10:12:00 UTC | 7 min |",
        "| Time to mitigate | started 2026-10-02 10:00:00 UTC | mitigated 2026-10-02 10:40:00 UTC "
        "| 40 min |",
        "| Time to resolve | started 2026-10-02 10:00:00 UTC | resolved 2026-10-02 11:30:00 UTC "
        "| 1 h 30 min |",
        "| 2026-10-02 09:50:00 | T-00:10:00 | change | deployed | chg-7 | Deploy api v2 deployed "
        "(normal, outcome rolled_back) [caused the incident] |",
        "| 2026-10-02 10:01:00 | T+00:01:00 | alert | fired | a1 | HighErrorRate fired "
        "(critical, api) [linked] |",
        "## Root cause",
        "The DB connection pool was too small.",
        "Root cause key: `db-pool`. Recurrence: 1 prior incident(s) with this key in the 720 h "
        "before the start: inc-20260920-1 (2026-09-20T08:00:00Z).",
        "## Action items",
        "| id | title | owner | due | completed |",
        "| ai-external | Load test checkout |  |  | 2026-10-10T16:00:00Z |",
        f"| {IID}-ai-1 | Alert on pool \\| saturation | bob | 2026-10-20 |  |",
    ]:
        assert line in out.splitlines(), line
    sections = [ln for ln in out.splitlines() if ln.startswith("## ")]
    assert sections == ["## Summary", "## Impact", "## Timeline", "## Root cause",
                        "## Action items"]


def test_review_of_an_open_incident(cli: Any, engine: Engine) -> None:
    load(engine, [{"kind": "incident", "id": "x", "severity": 3,
                   "started_at": "2026-10-02T10:00:00Z"}])
    code, out, _ = cli("incidents", "review", "x")
    assert code == 0
    assert "- Status: open" in out and "the service is not restored yet" in out
    assert "| Time to resolve | started 2026-10-02 10:00:00 UTC | resolved - | - |" in out
    assert "Not recorded yet." in out


def test_action_items_round_trip(cli: Any, engine: Engine, tmp_path: Path) -> None:
    load(engine, RECORDS)
    review = tmp_path / "review.md"
    assert cli("incidents", "review", IID, "--output", str(review))[0] == 0
    before = records_of(engine, "action_item")
    # reading the review back unchanged changes nothing
    code, _, err = cli("import", "--from", "review", str(review))
    assert code == 0, err
    assert records_of(engine, "action_item") == before

    text = review.read_text(encoding="utf-8")
    text = text.replace("| Alert on pool \\| saturation | bob |",
                        "| Alert on pool \\| saturation | carol |")
    text += ("|  | Add a runbook for the pool | dave | 2026-11-01 |  |\n"
             "| | Raise pool size | bob |  | 2026-10-03T09:00:00+02:00 |\n")
    review.write_text(text, encoding="utf-8")
    code, out, err = cli("import", "--from", "review", str(review), "--format", "json")
    assert code == 0, err
    items = records_of(engine, "action_item")
    assert items == {
        f"{IID}-ai-1": {"kind": "action_item", "id": f"{IID}-ai-1", "incident": IID,
                        "title": "Alert on pool | saturation", "owner": "carol",
                        "due": "2026-10-20"},
        "ai-external": before["ai-external"],
        f"{IID}-ai-2": {"kind": "action_item", "id": f"{IID}-ai-2", "incident": IID,
                        "title": "Add a runbook for the pool", "owner": "dave",
                        "due": "2026-11-01"},
        f"{IID}-ai-3": {"kind": "action_item", "id": f"{IID}-ai-3", "incident": IID,
                        "title": "Raise pool size", "owner": "bob",
                        "completed_at": "2026-10-03T07:00:00Z"},
    }
    # the same file again: the new rows get the same ids, nothing changes
    snapshot = export_all(engine)
    assert cli("import", "--from", "review", str(review))[0] == 0
    assert export_all(engine) == snapshot
    # and the next review lists them, ready for another round
    code, out, _ = cli("incidents", "review", IID)
    assert f"| {IID}-ai-3 | Raise pool size | bob |  | 2026-10-03T07:00:00Z |" in out


BAD_ROWS = [
    ("| | Fix it | bob | 2026-13-01 | |", "column 'due': '2026-13-01' is not a date"),
    ("| | Fix it | bob | 01/10/2026 | |", "column 'due': '01/10/2026' is not a date"),
    ("| | Fix it | bob | | 2026-10-03T09:00:00 |", "column 'completed'"),
    ("| | | bob | | |", "column 'title' is empty"),
    ("| | Fix it | bob |", "3 cells, the header has 5"),
    (f"| {IID}-ai-1 | Again | bob | | |", f"id '{IID}-ai-1' is used on line"),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS)
def test_bad_rows_name_the_line_and_import_nothing(
    cli: Any, engine: Engine, tmp_path: Path, row: str, message: str
) -> None:
    load(engine, RECORDS)
    review = tmp_path / "review.md"
    cli("incidents", "review", IID, "--output", str(review))
    lines = review.read_text(encoding="utf-8").splitlines()
    lines.insert(len(lines) - 1, "| | A good new row | eve | 2026-11-01 | |")
    lines.append(row)
    review.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = export_all(engine)
    code, _, err = cli("import", "--from", "review", str(review))
    assert code == 2
    flat = " ".join(err.split())
    assert f"review payload, {review}, line {len(lines)}: {message}" in flat, flat
    assert export_all(engine) == before  # all or nothing


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("# Some notes\n\n## Action items\n\n| title |\n|---|\n| x |\n", None,
         "no '# Post-incident review: <incident id>' heading"),
        ("# Post-incident review: a b\n", 1, "must be followed by one incident id"),
        ("# Post-incident review: i\n\n## Summary\n", None, "no '## Action items' heading"),
        ("# Post-incident review: i\n## Action items\n\ntext\n## Next\n", 5,
         "no table under '## Action items' before this heading"),
        ("# Post-incident review: i\n## Action items\n| title | priority |\n|---|---|\n", 3,
         "unknown column 'priority'"),
        ("# Post-incident review: i\n## Action items\n| id | owner |\n|---|---|\n", 3,
         "needs a 'title' column"),
        ("# Post-incident review: i\n## Action items\n| title |\n| x |\n", 4,
         "expected the table's separator row"),
    ],
)
def test_review_structure_errors(text: str, line: int | None, message: str) -> None:
    with pytest.raises(ReviewError) as err:
        parse_review(text)
    assert err.value.line == line
    assert message in err.value.reason


def test_parse_review_columns_in_any_order() -> None:
    text = (
        "# Post-incident review: i9\n\nnotes\n\n## ACTION ITEMS\n\nsome words\n\n"
        "| Owner | Title | ID |\n| :--- | --- | ---: |\n"
        "| bob | Keep | i9-ai-4 |\n|  |  |  |\n| | New | |\n\nafter the table | not read\n"
    )
    assert parse_review(text) == [
        {"kind": "action_item", "id": "i9-ai-4", "incident": "i9", "title": "Keep",
         "owner": "bob"},
        {"kind": "action_item", "id": "i9-ai-5", "incident": "i9", "title": "New"},
    ]


def test_review_over_the_api(db_url: str) -> None:
    with api(db_url) as a:
        load(a.engine, RECORDS)
        r = a.client.get(f"/api/v1/incidents/{IID}/review", headers=a.read)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
        assert r.text.startswith(f"# Post-incident review: {IID}\n")
        assert parse_review(r.text)[0]["id"] == "ai-external"
        assert a.client.get("/api/v1/incidents/none/review", headers=a.read).status_code == 404
