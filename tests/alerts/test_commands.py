"""`opsledger alerts list` and `opsledger alerts noise` end to end (SQLite and PostgreSQL),
and GET /api/v1/alerts/noise."""

from __future__ import annotations

import json
import re
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

from opsledger.access import create_token
from opsledger.api.app import create_app
from opsledger.settings import Settings
from tests.alerts.data import RECORDS
from tests.conftest import load
from tests.ingest.test_import import write_jsonl
from tests.kpis.helpers import TOPOLOGY

POLICY = """\
[alerts]
flap_minutes = 10
quick_resolve_minutes = 5
storm_count = 4
storm_minutes = 10
"""


@pytest.fixture
def ledger(cli: Any, tmp_path: Path) -> tuple[Any, Path]:
    """The hand-computed ledger imported through the command line, and the policy file."""
    assert cli("import", str(write_jsonl(tmp_path / "r.jsonl", TOPOLOGY + RECORDS)))[0] == 0
    policy = tmp_path / "opsledger.toml"
    policy.write_text(POLICY, encoding="utf-8")
    return cli, policy


# --- alerts list ----------------------------------------------------------------------------


def test_list_newest_first_with_filters(ledger: tuple[Any, Path]) -> None:
    cli, _ = ledger
    code, out, _ = cli("alerts", "list", "--format", "json", "--limit", "1000")
    assert code == 0
    items = json.loads(out)
    assert len(items) == 38  # 36 in 2026-11, e0 before and e2 after
    fired = [i["fired_at"] for i in items]
    assert fired == sorted(fired, reverse=True)
    assert items[0]["id"] == "e2"  # 2026-12-01T00:00:00Z
    code, out, _ = cli("alerts", "list", "--name", "Storm", "--since", "2026-11-20T08:00:00Z",
                       "--until", "2026-11-20T08:13:00+00:00", "--format", "json")
    # since inclusive, until exclusive: s7..s10, not s11 at 08:13
    assert [i["id"] for i in json.loads(out)] == ["s10", "s9", "s8", "s7"]
    s10 = json.loads(out)[0]
    assert s10 == {"id": "s10", "name": "Storm", "service": "shop", "severity": "critical",
                   "fired_at": "2026-11-20T08:09:59Z", "runbook_url": "https://rb/storm",
                   "labels": {"instance": "h1", "job": "web"}}
    # an offset other than Z is the same instant
    code, out, _ = cli("alerts", "list", "--service", "db", "--since",
                       "2026-11-15T07:00:00+02:00", "--limit", "2", "--format", "json")
    assert [i["id"] for i in json.loads(out)] == ["e2", "p6"]
    code, out, _ = cli("alerts", "list", "--name", "Edge")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Alerts (3, newest first)")
    assert re.split(r"\s*[┃│]\s*", lines[1].strip())[:5] == [
        "id", "name", "service", "severity", "fired_at"]
    assert [ln.split()[0] for ln in lines[3:]] == ["e2", "e1", "e0"]


@pytest.mark.parametrize("args, message", [
    (["--since", "2026-11-01T00:00:00"], "--since '2026-11-01T00:00:00' has no UTC offset"),
    (["--until", "2026-11-01"], "--until '2026-11-01' has no UTC offset"),
    (["--since", "yesterday"], "is not an RFC 3339 timestamp"),
    (["--since", "2026-11-02T00:00:00Z", "--until", "2026-11-01T00:00:00Z"], "must be after"),
    (["--format", "csv"], "--format 'csv': use one of table, json"),
    (["--limit", "0"], "--limit"),
])
def test_list_bad_options_exit_2(cli: Any, args: list[str], message: str) -> None:
    code, out, err = cli("alerts", "list", *args)
    assert code == 2
    assert message in err and out == ""


# --- alerts noise ---------------------------------------------------------------------------


def test_noise_json_matches_the_scorecard(ledger: tuple[Any, Path]) -> None:
    cli, policy = ledger
    for scope in ([], ["--team", "ops"], ["--service", "shop"], ["--team", "web"]):
        for when in (["--period", "2026-11"], ["--from", "2026-11-02", "--to", "2026-11-16"]):
            code, out, _ = cli("--policy", str(policy), "alerts", "noise", *when, *scope,
                               "--format", "json")
            assert code == 0
            noise = json.loads(out)
            code, out, _ = cli("--policy", str(policy), "scorecard", *when, *scope,
                               "--format", "json")
            card = {k["id"]: k for k in json.loads(out)["kpis"]}["alert_noise_ratio"]
            got = noise["alert_noise_ratio"]
            assert (got["value"], got["count"], got["status"]) == (
                card["value"], card["count"], card["status"])
            assert got["non_actionable"] == card["non_actionable"]
            assert noise["period"] == json.loads(out)["period"]


def test_noise_json_has_every_figure(ledger: tuple[Any, Path]) -> None:
    cli, policy = ledger
    code, out, _ = cli("--policy", str(policy), "alerts", "noise", "--period", "2026-11",
                       "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["settings"]["storm_count"] == 4 and data["settings"]["delete_min_count"] == 10
    assert data["alert_noise_ratio"]["value"] == pytest.approx(100 * 28 / 36)
    storm = next(r for r in data["rules"] if r["name"] == "Storm")
    assert {k: storm[k] for k in ("occurrences", "actionable", "storms", "biggest_storm",
                                  "storm_excess", "critical", "missing_runbook")} == {
        "occurrences": 11, "actionable": 2, "storms": 2, "biggest_storm": 5,
        "storm_excess": 7, "critical": 11, "missing_runbook": 0}
    first = data["recommendations"][0]
    assert (first["rank"], first["action"], first["rule"], first["removed"]) == (
        1, "delete", "Chatty", 10)
    assert first["noise_ratio_before"] == pytest.approx(100 * 28 / 36)
    assert first["noise_ratio_after"] == pytest.approx(100 * 18 / 26)
    assert first["change_points"] == pytest.approx(100 * 18 / 26 - 100 * 28 / 36)


def _columns(line: str) -> list[int]:
    return [i for i, ch in enumerate(line) if ch in "┃│╇"]


def test_noise_table_is_aligned(ledger: tuple[Any, Path]) -> None:
    cli, policy = ledger
    code, out, _ = cli("--policy", str(policy), "alerts", "noise", "--period", "2026-11")
    assert code == 0
    lines = [ln.rstrip() for ln in out.splitlines()]
    assert lines[0] == ("Alert noise 2026-11 (scope: all): 36 alerts, 28 not actionable, "
                        "noise ratio 77.78 % (target < 20, missed)")
    start = lines.index("Rules (noisiest first)")
    rule_lines = lines[start + 1:start + 3 + 7]  # header, rule, 7 rules
    assert len({tuple(_columns(ln)) for ln in rule_lines}) == 1  # one column layout
    assert rule_lines[2].split("│")[0].strip() == "Chatty"
    flappy = next(ln for ln in rule_lines if ln.startswith("Flappy"))
    assert [c.strip() for c in flappy.split("│")] == [
        "Flappy", "6", "16.7", "3", "4.0", "50.0", "0", "-", "100.0"]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Recommendations"))
    rec_lines = lines[start + 1:start + 3 + 7]
    assert len({tuple(_columns(ln)) for ln in rec_lines}) == 1
    cells = [c.strip() for c in rec_lines[2].split("│")]
    assert cells[:5] == ["1", "delete", "Chatty", "77.78 % -> 69.23 %", "-8.55"]
    cells = [c.strip() for c in rec_lines[3].split("│")]
    assert cells[:5] == ["2", "group or inhibit", "Storm", "77.78 % -> 72.41 %", "-5.36"]


def test_noise_markdown(ledger: tuple[Any, Path]) -> None:
    cli, policy = ledger
    code, out, _ = cli("--policy", str(policy), "alerts", "noise", "--period", "2026-11",
                       "--service", "shop", "--format", "markdown")
    assert code == 0
    assert out.startswith("## Alert noise 2026-11 (scope: service shop): 11 alerts")
    assert "| Storm | 11 | 18.2 | 0 | - | 0.0 | 2 | 5 | 0.0 |" in out
    assert ("| 2 | group or inhibit | Storm | 81.82 % -> 50.00 % | -31.82 | 2 storms, biggest 5 "
            "occurrences; 7 occurrences beyond the first of each storm |") in out


def test_noise_empty_period(ledger: tuple[Any, Path]) -> None:
    cli, _ = ledger
    code, out, _ = cli("alerts", "noise", "--period", "2025-01")
    assert code == 0
    assert "0 alerts, 0 not actionable, noise ratio - (target < 20, no_data)" in out
    assert "no alerts fired in this period and scope" in out
    code, out, _ = cli("alerts", "noise", "--period", "2025-01", "--format", "json")
    data = json.loads(out)
    assert data["rules"] == [] and data["recommendations"] == []
    assert data["alert_noise_ratio"]["status"] == "no_data"


@pytest.mark.parametrize("args, message", [
    (["--period", "2026-13"], "month 13 is not 01-12"),
    (["--period", "2026-11", "--from", "2026-11-01", "--to", "2026-11-02"], "not both"),
    (["--from", "2026-11-01"], "--from and --to go together"),
    (["--from", "2026-11-05", "--to", "2026-11-01"], "must be after"),
    (["--period", "2026-11", "--format", "csv"], "use one of table, json, markdown"),
    (["--period", "last"], "is not one of"),
    (["--period", "9999-12"], "outside the supported years"),
])
def test_noise_bad_options_exit_2(cli: Any, args: list[str], message: str) -> None:
    code, out, err = cli("alerts", "noise", *args)
    assert code == 2
    assert message in err and out == ""


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("storm_count = 1", "[alerts.storm_count] Input should be greater than 1"),
        ("raise_for_min_percent = 130", "[alerts.raise_for_min_percent] Input should be less "
                                        "than or equal to 100"),
        ("delete_min_count = 0", "[alerts.delete_min_count] Input should be greater than or "
                                 "equal to 1"),
        ("demote_min_count = 2.5", "[alerts.demote_min_count] Input should be a valid integer"),
        ("flap_minutes = 2000", "[alerts.flap_minutes] Input should be less than or equal to "
                                "1440"),
        ("storm_window = 10", "[alerts.storm_window] Extra inputs are not permitted"),
    ],
)
def test_noise_bad_policy_exit_2(cli: Any, tmp_path: Path, line: str, message: str) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(f"[alerts]\n{line}\n", encoding="utf-8")
    code, out, err = cli("--policy", str(policy), "alerts", "noise", "--period", "2026-11")
    assert code == 2 and out == ""
    assert err.strip() == f"error: {policy}: {message}"


def test_noise_thresholds_from_the_policy_file(ledger: tuple[Any, Path]) -> None:
    cli, policy = ledger
    code, out, _ = cli("--policy", str(policy), "alerts", "noise", "--period", "2026-11",
                       "--format", "json")
    assert code == 0
    assert ("delete", "Chatty") in {(r["action"], r["rule"]) for r in
                                    json.loads(out)["recommendations"]}
    policy.write_text(POLICY + "delete_min_count = 11\n", encoding="utf-8")
    code, out, _ = cli("--policy", str(policy), "alerts", "noise", "--period", "2026-11",
                       "--format", "json")
    data = json.loads(out)
    assert data["settings"]["delete_min_count"] == 11
    assert ("delete", "Chatty") not in {(r["action"], r["rule"]) for r in data["recommendations"]}


# --- the API --------------------------------------------------------------------------------


def test_api_noise(db_url: str, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        # starlette announces its move from httpx to httpx2 with a UserWarning subclass
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    policy = tmp_path / "opsledger.toml"
    policy.write_text(POLICY, encoding="utf-8")
    app = create_app(Settings(database_url=db_url, policy=policy))
    try:
        load(app.state.engine, TOPOLOGY + RECORDS)
        with app.state.engine.begin() as conn:
            read = create_token(conn, f"read-{uuid.uuid4().hex[:8]}", "read")
            ingest = create_token(conn, f"ingest-{uuid.uuid4().hex[:8]}", "ingest")
        client = TestClient(app)
        url = "/api/v1/alerts/noise"
        auth = {"Authorization": f"Bearer {read}"}
        r = client.get(url, params={"period": "2026-11", "team": "ops"}, headers=auth)
        assert r.status_code == 200
        data = r.json()
        assert (data["alert_noise_ratio"]["count"], data["alert_noise_ratio"]["non_actionable"]) \
            == (23, 18)
        assert data["recommendations"][0]["rule"] == "Chatty"
        card = client.get("/api/v1/scorecard", params={"period": "2026-11", "team": "ops"},
                          headers=auth).json()
        kpi = {k["id"]: k for k in card["kpis"]}["alert_noise_ratio"]
        assert data["alert_noise_ratio"]["value"] == kpi["value"]
        r = client.get(url, params={"from": "2026-11-10", "to": "2026-11-11"}, headers=auth)
        assert r.status_code == 200 and r.json()["period"]["label"] == "2026-11-10..2026-11-11"
        assert client.get(url, params={"period": "2026-11"}).status_code == 401
        bad = client.get(url, params={"period": "2026-11"},
                         headers={"Authorization": f"Bearer {ingest}"})
        assert bad.status_code == 403
        bad = client.get(url, params={"period": "soon"}, headers=auth)
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert "is not one of" in bad.json()["detail"]
        assert client.get(url, params={"from": "0001-01-01", "to": "0001-01-02"},
                          headers=auth).status_code == 200
        assert client.get(url, params={"period": "9999-12"}, headers=auth).status_code == 422
    finally:
        app.state.engine.dispose()
