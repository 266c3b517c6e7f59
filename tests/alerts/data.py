"""A hand-computed alert ledger for the noise analysis (period 2026-11).

Policy for these records: flap_minutes 10, quick_resolve_minutes 5, storm_count 4,
storm_minutes 10 (STORM_POLICY). Every expected figure is worked out in the comments and in
EXPECTED below; tests/alerts/test_noise.py asserts them.

Topology (tests.kpis.helpers.TOPOLOGY): team ops = services api, db; team web = shop;
service orphan has no team.
"""

from __future__ import annotations

from typing import Any

from opsledger.kpis.policy import AlertsPolicy, Policy

STORM_POLICY = Policy(
    alerts=AlertsPolicy(flap_minutes=10, quick_resolve_minutes=5, storm_count=4, storm_minutes=10)
)


def alert(aid: str, name: str, fired: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "alert", "id": aid, "name": name, "fired_at": fired, **fields}


D = "2026-11-02T"  # Flappy's day

ALERTS: list[dict[str, Any]] = [
    # --- Flappy (api, warning, no runbook): two series by fingerprint --------------------
    # f1 fpA 10:00-10:03: 3 min, quick, unacked
    alert("f1", "Flappy", D + "10:00:00Z", service="api", severity="warning", fingerprint="fpA",
          resolved_at=D + "10:03:00Z"),
    # f2 fpA fires 5 min after f1 resolved: flapping; 12 min; acknowledged -> actionable
    alert("f2", "Flappy", D + "10:08:00Z", service="api", severity="warning", fingerprint="fpA",
          resolved_at=D + "10:20:00Z", acknowledged_at=D + "10:09:00Z"),
    # f3 fpB's first: 1 min after f2 resolved, but another series: not flapping; 1 min, quick
    alert("f3", "Flappy", D + "10:21:00Z", service="api", severity="warning", fingerprint="fpB",
          resolved_at=D + "10:22:00Z"),
    # f6 fpB fires 3 min after f3 resolved: flapping; exactly 5 min: not quick (under 5 only)
    alert("f6", "Flappy", D + "10:25:00Z", service="api", severity="warning", fingerprint="fpB",
          resolved_at=D + "10:30:00Z"),
    # f4 fpA fires exactly 10 min after f2 resolved: flapping (at most 10); 4 min, quick
    alert("f4", "Flappy", D + "10:30:00Z", service="api", severity="warning", fingerprint="fpA",
          resolved_at=D + "10:34:00Z"),
    # f5 fpA fires 11 min after f4 resolved: not flapping; never resolved
    alert("f5", "Flappy", D + "10:45:00Z", service="api", severity="warning", fingerprint="fpA"),
    # Flappy: 6 occurrences, 1 actionable (f2); flapping 3 (f2, f4, f6); durations 3, 12, 1,
    # 5, 4 -> sorted 1 3 4 5 12 -> median 4; quick unacked f1 f3 f4 = 3 (50 %), none
    # actionable; storms (4 in 10 min): [10:00,10:10) 2, [10:21,10:31) 3 -> none.
    # --- Edge (db): the previous occurrence of its series is before the period -----------
    alert("e0", "Edge", "2026-10-31T23:50:00Z", service="db", fingerprint="fpE",
          resolved_at="2026-10-31T23:55:00Z"),
    # e1 fires 9 min after e0 resolved: flapping; actionable true; 26 min
    alert("e1", "Edge", "2026-11-01T00:04:00Z", service="db", fingerprint="fpE",
          resolved_at="2026-11-01T00:30:00Z", actionable=True),
    # e2 fires exactly at the period's end: out
    alert("e2", "Edge", "2026-12-01T00:00:00Z", service="db", fingerprint="fpE"),
    # --- Storm (shop, critical, runbook): series by labels only (no fingerprint) -----------
    # burst 1, 11-10 12:00 12:02 12:04 12:06 12:09: window at 12:00 holds 5, at 12:02 holds 4
    # -> one storm of 5; s1 is acknowledged (actionable)
    alert("s1", "Storm", "2026-11-10T12:00:00Z", service="shop", severity="critical",
          labels={"instance": "h1", "job": "web"}, runbook_url="https://rb/storm",
          acknowledged_at="2026-11-10T12:01:00Z"),
    *[alert(f"s{i}", "Storm", f"2026-11-10T12:{m}:00Z", service="shop", severity="critical",
            labels={"job": "web", "instance": "h1"}, runbook_url="https://rb/storm")
      for i, m in [(2, "02"), (3, "04"), (4, "06"), (5, "09")]],
    # s6 12:15: the window at 12:06 holds 12:06 12:09 12:15 = 3: not in a storm; linked to an
    # incident -> actionable
    alert("s6", "Storm", "2026-11-10T12:15:00Z", service="shop", severity="critical",
          labels={"instance": "h1", "job": "web"}, runbook_url="https://rb/storm", incident="i1"),
    # burst 2, 11-20 08:00 08:03 08:06 08:09:59 (9 min 59 s < 10): storm of 4, none actionable
    *[alert(f"s{i}", "Storm", f"2026-11-20T08:{m}Z", service="shop", severity="critical",
            labels={"instance": "h1", "job": "web"}, runbook_url="https://rb/storm")
      for i, m in [(7, "00:00"), (8, "03:00"), (9, "06:00"), (10, "09:59")]],
    # s11 08:13: the window at 08:03 is [08:03, 08:13): 3 -> not in a storm
    alert("s11", "Storm", "2026-11-20T08:13:00Z", service="shop", severity="critical",
          labels={"instance": "h1", "job": "web"}, runbook_url="https://rb/storm"),
    # Storm: 11 occurrences, 2 actionable (s1, s6); 11 critical, 2 actionable (18.2 %);
    # storms 2, biggest 5, in storms 9, beyond the first 4 + 3 = 7; grouped, storm 1 keeps its
    # actionable s1 so its 4 others leave the numerator, storm 2 (no actionable) keeps one
    # non-actionable notification: 4 - 1 = 3 -> 7 leave the numerator. Never resolved.
    # --- Chatty (api): never actionable over 10 occurrences -------------------------------
    # c1 is acknowledged but actionable false wins; each lasts 30 min; one a day
    *[alert(f"c{d}", "Chatty", f"2026-11-{d + 2:02d}T00:00:00Z", service="api",
            resolved_at=f"2026-11-{d + 2:02d}T00:30:00Z", actionable=False,
            **({"acknowledged_at": f"2026-11-{d + 2:02d}T00:01:00Z"} if d == 1 else {}))
      for d in range(1, 11)],
    # --- Paged (db, critical, runbook): 6 occurrences, 3 actionable = 50 %: not demoted ---
    *[alert(f"p{h}", "Paged", f"2026-11-15T0{h}:00:00Z", service="db", severity="critical",
            fingerprint="fpP", runbook_url="https://rb/paged",
            resolved_at=f"2026-11-15T0{h}:20:00Z",
            **({"acknowledged_at": f"2026-11-15T0{h}:02:00Z"} if h <= 3 else {}))
      for h in range(1, 7)],
    # --- Orphan (service orphan, no team): actionable through its incident, no runbook ---
    alert("o1", "Orphan", "2026-11-25T10:00:00Z", service="orphan", incident="i1"),
    # --- NoSvc (no service): not actionable ----------------------------------------------
    alert("n1", "NoSvc", "2026-11-26T10:00:00Z"),
]

INCIDENTS: list[dict[str, Any]] = [
    {"kind": "incident", "id": "i1", "severity": 2, "service": "shop",
     "started_at": "2026-11-10T12:00:00Z"},
]

RECORDS = INCIDENTS + ALERTS

# Whole ledger, 2026-11: 6 + 1 + 11 + 10 + 6 + 1 + 1 = 36 occurrences;
# not actionable: Flappy 5, Edge 0, Storm 9, Chatty 10, Paged 3, Orphan 0, NoSvc 1 = 28.
TOTAL, NOISY = 36, 28
