"""The commands end to end: scorecard forms, policy, check, export/import, rebuild, demo."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tests.ingest.test_import import write_jsonl

RECORDS = [
    {"kind": "team", "id": "core"},
    {"kind": "service", "id": "api", "team": "core", "tier": "critical"},
    {"kind": "service", "id": "orphan"},
    {"kind": "incident", "id": "i1", "severity": 1, "service": "api",
     "started_at": "2026-10-02T10:00:00Z", "mitigated_at": "2026-10-02T10:30:00Z"},
    {"kind": "incident", "id": "i2", "severity": 1, "service": "ghost",
     "started_at": "2026-09-02T10:00:00Z", "resolved_at": "2026-09-02T12:00:00Z"},
    {"kind": "alert", "id": "a1", "name": "CPU", "service": "api",
     "fired_at": "2026-10-03T00:00:00Z", "acknowledged_at": "2026-10-03T00:05:00Z"},
    {"kind": "alert", "id": "a2", "name": "CPU", "service": "api",
     "fired_at": "2026-10-04T00:00:00Z"},
    {"kind": "runbook", "id": "rb1", "service": "api", "last_reviewed_at": "2020-01-01T00:00:00Z"},
]


def test_scorecard_json_shape(cli: Any, tmp_path: Path) -> None:
    assert cli("import", str(write_jsonl(tmp_path / "r.jsonl", RECORDS)))[0] == 0
    code, out, _ = cli("scorecard", "--period", "2026-10", "--format", "json", "--trend", "2")
    assert code == 0
    data = json.loads(out)
    assert data["period"] == {"label": "2026-10", "start": "2026-10-01T00:00:00Z",
                              "end": "2026-11-01T00:00:00Z"}
    assert data["scope"] == {"team": None, "service": None}
    kpis = {k["id"]: k for k in data["kpis"]}
    assert len(kpis) == 20
    mttr = kpis["mttr_sev1"]
    assert (mttr["value"], mttr["count"], mttr["status"]) == (30.0, 1, "met")
    assert mttr["by_severity"] == {"1": 30.0, "2": None, "3": None}
    assert [t["period"] for t in mttr["trend"]] == ["2026-09", "2026-08"]
    assert mttr["trend"][0]["value"] == 120.0  # i2, unknown service, counts when not narrowed
    noise = kpis["alert_noise_ratio"]
    assert (noise["value"], noise["count"], noise["status"]) == (50.0, 2, "missed")
    assert kpis["backup_success_rate"]["status"] == "no_data"
    assert "silent_failures" in kpis["backup_success_rate"]


def test_scorecard_other_forms_and_scope(cli: Any, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "r.jsonl", RECORDS)))
    code, out, _ = cli("scorecard", "--period", "2026-09", "--team", "core", "--format", "csv")
    assert code == 0
    rows = {r["kpi"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["mttr_sev1"]["status"] == "no_data"  # i2 names an unknown service
    code, out, _ = cli("scorecard", "--from", "2026-10-01", "--to", "2026-10-08",
                       "--format", "markdown")
    assert code == 0
    assert "| alert_noise_ratio |" in out and "2026-10-01..2026-10-08" in out
    code, out, _ = cli("scorecard", "--period", "2026-10")
    assert code == 0 and "mttr_sev1" in out and "met" in out


def test_bad_options_exit_2(cli: Any) -> None:
    assert cli("scorecard", "--period", "2026-13")[0] == 2
    assert cli("scorecard", "--period", "2026-10", "--from", "2026-10-01")[0] == 2
    assert cli("scorecard", "--format", "xml")[0] == 2
    code, _, err = cli("kpis", "explain", "nope", "--period", "2026-10")
    assert code == 2 and "unknown KPI 'nope'" in err


def test_policy_overrides_and_errors(cli: Any, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "r.jsonl", RECORDS)))
    policy = tmp_path / "opsledger.toml"
    policy.write_text('[targets]\nmttr_sev1 = 20\n[teams.core.targets]\n'
                      'alert_noise_ratio = { op = "<=", value = 50 }\n', encoding="utf-8")
    code, out, _ = cli("--policy", str(policy), "scorecard", "--period", "2026-10",
                       "--format", "json")
    kpis = {k["id"]: k for k in json.loads(out)["kpis"]}
    assert kpis["mttr_sev1"]["status"] == "missed"  # 30 min against < 20
    assert kpis["alert_noise_ratio"]["status"] == "missed"  # team override not in force
    code, out, _ = cli("--policy", str(policy), "scorecard", "--period", "2026-10",
                       "--team", "core", "--format", "json")
    kpis = {k["id"]: k for k in json.loads(out)["kpis"]}
    assert kpis["alert_noise_ratio"]["target"]["text"] == "<= 50"
    assert kpis["alert_noise_ratio"]["status"] == "met"
    policy.write_text("[targets]\nmttr_sevone = 20\n", encoding="utf-8")
    code, _, err = cli("--policy", str(policy), "scorecard", "--period", "2026-10")
    assert code == 2 and "unknown KPI 'mttr_sevone'" in err
    policy.write_text("[vulnerability_sla_days]\ncritical = -1\n", encoding="utf-8")
    code, _, err = cli("--policy", str(policy), "scorecard", "--period", "2026-10")
    assert code == 2 and "vulnerability_sla_days.critical" in err


def test_explain_lists_the_evidence(cli: Any, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "r.jsonl", RECORDS)))
    code, out, _ = cli("kpis", "explain", "alert_noise_ratio", "--period", "2026-10",
                       "--format", "json")
    assert code == 0
    data = json.loads(out)
    roles = {e["id"]: e["role"] for e in data["evidence"]}
    assert roles == {"a1": "denominator", "a2": "numerator"}
    assert data["kpi"]["value"] == 50.0


def test_check_reports_integrity(cli: Any, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "r.jsonl", RECORDS)))
    code, out, _ = cli("check", "--format", "json")
    assert code == 0
    found = {(f["check"], f["id"]) for f in json.loads(out)["findings"]}
    assert found == {("unknown_reference", "i2"), ("service_without_team", "orphan"),
                     ("stale_runbook", "rb1")}


def test_export_import_and_rebuild(cli: Any, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "r.jsonl", RECORDS)))
    out_file = tmp_path / "incidents.csv"
    assert cli("export", "--kind", "incident", "--format", "csv", "-o", str(out_file))[0] == 0
    _, out, _ = cli("import", str(out_file), "--format", "json")
    assert json.loads(out)["imported"][0]["counts"]["incident"] == {
        "inserted": 0, "replaced": 0, "unchanged": 2}
    before = cli("scorecard", "--period", "2026-10", "--format", "json")[1]
    assert cli("rebuild")[0] == 0
    assert cli("scorecard", "--period", "2026-10", "--format", "json")[1] == before


def test_demo_small(cli: Any) -> None:
    code, out, err = cli("demo", "--scale", "0.03", "--seed", "7", "--end", "2026-11-01")
    assert code == 0, err
    assert "Scorecard 2026-10" in out
    code, out, _ = cli("scorecard", "--period", "2026-10", "--format", "json")
    statuses = {k["status"] for k in json.loads(out)["kpis"]}
    assert {"met", "missed"} <= statuses


def test_service_scope_takes_its_team_targets(cli: Any, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "r.jsonl", RECORDS)))
    policy = tmp_path / "opsledger.toml"
    policy.write_text("[teams.core.targets]\nmttr_sev1 = 25\n", encoding="utf-8")
    _, out, _ = cli("--policy", str(policy), "scorecard", "--period", "2026-10",
                    "--service", "api", "--format", "json")
    mttr = next(k for k in json.loads(out)["kpis"] if k["id"] == "mttr_sev1")
    assert mttr["target"]["value"] == 25
    assert mttr["status"] == "missed"  # 30 min against the team's < 25


def test_policy_errors_name_the_file_at_load(cli: Any, tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("[teams.core.targets]\ntoil_hours_per_week = 3\n", encoding="utf-8")
    code, _, err = cli("--policy", str(policy), "scorecard", "--period", "2026-10")
    assert code == 2
    assert "p.toml: [teams.core.targets]" in err and "bare number cannot replace" in err


def test_import_goes_on_after_a_missing_file(cli: Any, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", RECORDS[:1])
    code, out, err = cli("import", str(tmp_path / "missing.jsonl"), str(good), "--format", "json")
    assert code == 2 and "no such file" in err
    assert json.loads(out)["imported"][0]["counts"]["team"]["inserted"] == 1
    assert cli("demo", "--end", "2026-13-01")[0] == 2


def test_period_out_of_range_is_a_usage_error(cli: Any) -> None:
    for period in ("9999-12", "0000", "9999-Q4"):
        code, _, err = cli("scorecard", "--period", period)
        assert code == 2, period
        assert "outside the supported years" in err
