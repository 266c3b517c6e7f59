"""Incidents opened automatically from alerts, by the `[[incidents.auto_open]]` rules of the
policy. Called from the webhook path (`ingest.inbound.ingest_records`) after the alerts of a
payload are stored, inside the same transaction."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from opsledger.incidents.service import get_record, write
from opsledger.kpis.policy import AutoOpenRule, Policy
from opsledger.records.validation import Record


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
    detected) when the alert fired. Returns the ids of the incidents opened."""
    rules = policy.incidents.auto_open
    if not rules:
        return []
    tiers: dict[str, str | None] = {}
    writes: list[tuple[str, Record]] = []
    opened: list[str] = []
    used: list[str] = []
    seen: set[str] = set()
    for given in alert_records:
        aid = given.get("id")
        if given.get("kind", "alert") != "alert" or not isinstance(aid, str) or aid in seen:
            continue
        seen.add(aid)
        alert = get_record(conn, "alert", aid)
        if alert is None or alert.get("incident") is not None:
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
        if get_record(conn, "incident", iid) is None and iid not in opened:
            summary = (alert.get("annotations") or {}).get("summary")
            title = summary if isinstance(summary, str) and summary.strip() else alert["name"]
            writes.append(
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
        writes.append(("alert", alert))
        used.append(rule.name)
    if writes:
        names = ", ".join(dict.fromkeys(used))
        write(conn, writes, f"auto-open (rule {names})")
    return opened


