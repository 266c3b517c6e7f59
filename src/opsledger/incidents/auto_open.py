"""Incidents opened automatically from alerts, by the `[[incidents.auto_open]]` rules of the
policy, and closed again with their alerts when the rule says `resolve_with_alerts`. Called
from the webhook path (`ingest.inbound.ingest_records`) after the alerts of a payload are
stored, inside the same transaction.

An auto-opened incident is stored with the source `auto-open (rule <name>)` (one import per
rule), so its first stored version says which rule opened it; `resolve_with_alerts` reads
that back. Semantics in docs/commands/incidents.md ("Incidents opened from alerts")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from opsledger.incidents.history import incident_versions
from opsledger.incidents.service import ALERT, get_record, select_records, write
from opsledger.kpis.policy import AutoOpenRule, Policy
from opsledger.records.validation import Record

OPEN_SOURCE = "auto-open (rule {})"
RESOLVE_SOURCE = "auto-resolve (rule {})"


def auto_incident_id(alert_id: str) -> str:
    return f"auto-{alert_id}"


def _matches(rule: AutoOpenRule, alert: Record, tier: str | None) -> bool:
    if rule.alert_severity is not None and alert.get("severity") not in rule.alert_severity:
        return False
    if rule.service_tier is not None and tier not in rule.service_tier:
        return False
    return rule.alert_names is None or alert.get("name") in rule.alert_names


def auto_open(conn: Connection, policy: Policy, alert_records: Iterable[Record]) -> list[str]:
    """Open an incident for each alert that matches a `[[incidents.auto_open]]` rule (the
    first matching rule wins) and is linked to no incident yet. The incident id is
    `auto-<alert id>`, so a retried notification never opens a second one; it starts (and is
    detected) when the alert fired. Then close the incidents of these alerts whose rule says
    `resolve_with_alerts` and whose linked alerts are all resolved (`resolve_with_alerts`
    below). Returns the ids of the incidents opened."""
    rules = policy.incidents.auto_open
    if not rules:
        return []
    tiers: dict[str, str | None] = {}
    writes: dict[str, list[tuple[str, Record]]] = {}  # per rule: one import (source) each
    opened: list[str] = []
    seen: set[str] = set()
    touched: list[str] = []  # incidents of the payload's alerts
    for given in alert_records:
        aid = given.get("id")
        if given.get("kind", "alert") != "alert" or not isinstance(aid, str) or aid in seen:
            continue
        seen.add(aid)
        alert = get_record(conn, "alert", aid)
        if alert is None:
            continue
        if alert.get("incident") is not None:
            touched.append(alert["incident"])
            continue
        service = alert.get("service")
        if service is not None and service not in tiers:
            svc = get_record(conn, "service", service)
            tiers[service] = svc.get("tier") if svc else None
        tier = tiers.get(service) if service is not None else None
        rule = next((r for r in rules if _matches(r, alert, tier)), None)
        if rule is None:
            continue
        iid = auto_incident_id(alert["id"])
        batch = writes.setdefault(rule.name, [])
        if get_record(conn, "incident", iid) is None and iid not in opened:
            summary = (alert.get("annotations") or {}).get("summary")
            title = summary if isinstance(summary, str) and summary.strip() else alert["name"]
            batch.append(
                (
                    "incident",
                    {
                        "id": iid,
                        "title": title,
                        "severity": rule.incident_severity,
                        "service": service,
                        "started_at": alert["fired_at"],
                        "detected_at": alert["fired_at"],
                    },
                )
            )
            opened.append(iid)
        alert["incident"] = iid
        batch.append(("alert", alert))
        touched.append(iid)
    for name, batch in writes.items():
        write(conn, batch, OPEN_SOURCE.format(name))
    resolve_with_alerts(conn, policy, touched)
    return opened


@dataclass(frozen=True)
class Resolution:
    incident: str
    rule: str
    at: datetime  # the latest resolved_at of the linked alerts
    mitigated_at: datetime
    resolved_at: datetime


def _opening_rule(conn: Connection, policy: Policy, iid: str) -> tuple[AutoOpenRule | None, bool]:
    """The rule named by the incident's first stored version (None: opened by hand or by a
    rule no longer in the policy), and whether an earlier version was resolved."""
    versions = incident_versions(conn, iid)
    if not versions:
        return None, False
    by_source = {OPEN_SOURCE.format(r.name): r for r in policy.incidents.auto_open}
    rule = by_source.get(versions[0].source)
    was_resolved = any(v.record.get("resolved_at") is not None for v in versions)
    return rule, was_resolved


def plan_resolution(conn: Connection, policy: Policy, iid: str) -> Resolution | None:
    """Whether the incident is to be closed with its alerts now, and at what times."""
    inc = get_record(conn, "incident", iid)
    if inc is None or inc.get("resolved_at") is not None:
        return None
    rule, was_resolved = _opening_rule(conn, policy, iid)
    if rule is None or not rule.resolve_with_alerts:
        return None  # opened by hand, or by a rule that does not close its incidents
    if was_resolved and not rule.resolve_reopened:
        return None  # someone reopened it: it stays open until someone resolves it
    taken_over = inc.get("acknowledged_at") is not None or inc.get("mitigated_at") is not None
    if taken_over and not rule.resolve_acknowledged:
        return None  # a person is on it: the person resolves it
    alerts = select_records(conn, "alert", ALERT.c.incident == iid)
    if not alerts or any(a.get("resolved_at") is None for a in alerts):
        return None
    last: datetime = max(a["resolved_at"] for a in alerts)
    if last < inc["started_at"]:
        return None  # every linked alert ended before the impact began: nothing to infer
    mitigated: datetime = inc.get("mitigated_at") or last
    return Resolution(iid, rule.name, last, mitigated, max(last, mitigated))


def resolve_with_alerts(conn: Connection, policy: Policy, incident_ids: Iterable[str]) -> list[str]:
    """Close the given incidents whose opening rule says `resolve_with_alerts` once every
    linked alert is resolved: `mitigated_at` (when not recorded) and `resolved_at` become the
    latest `resolved_at` of those alerts (`resolved_at` not before a recorded `mitigated_at`).
    Left open: incidents opened by hand, acknowledged or mitigated by a person, or resolved
    before and reopened, unless the rule says `resolve_acknowledged` or `resolve_reopened`.
    Returns the ids of the incidents resolved."""
    if not any(r.resolve_with_alerts for r in policy.incidents.auto_open):
        return []
    done: list[str] = []
    for iid in dict.fromkeys(incident_ids):
        plan = plan_resolution(conn, policy, iid)
        if plan is None:
            continue
        inc = get_record(conn, "incident", iid)
        assert inc is not None
        inc.update(mitigated_at=plan.mitigated_at, resolved_at=plan.resolved_at)
        write(conn, [("incident", inc)], RESOLVE_SOURCE.format(plan.rule))
        done.append(iid)
    return done
