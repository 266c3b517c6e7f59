"""The demo's twelve months: alerts, incidents, changes, backups, patches, toil and the rest,
day by day."""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from opsledger.demo.catalogues import (
    _ACK_MEDIAN_S,
    _ACTION_TITLES,
    _BACKUP_FAILED_P,
    _BACKUP_MISSED_P,
    _CAPACITY_RESOURCES,
    _CAUSE_WEIGHTS,
    _CAUSES,
    _CHANGE_TITLES,
    _DIURNAL_P,
    _DURATION_MEDIAN_S,
    _FLAP_SHARE,
    _INCIDENT_ALERTS,
    _INCIDENT_RATE,
    _INCIDENT_STORM_P,
    _INDEPENDENT_STORMS_PER_YEAR,
    _NEVER_FIXED_P,
    _NOISY_SHARE,
    _ON_TIME_P,
    _OTHER_CAUSES,
    _PACKAGES,
    _PROVISIONING,
    _RESTORE_PASS_P,
    _RISK_ACCEPTED_P,
    _ROLLBACK_PLANS,
    _RULES,
    _SEVERITIES,
    _SLA_DAYS,
    _STATEFUL_KINDS,
    _STORM_RULES,
    _STORM_SIZE,
    _SURVEY_SCORE_P,
    _TASKS,
    _WORK_TITLES,
)
from opsledger.demo.common import (
    _EPOCH_ORDINAL,
    ALERTS_PER_YEAR,
    DAY,
    HOUR,
    MINUTE,
    TEAMS,
    FloatArray,
    IntArray,
    Record,
    _busday,
    _Clock,
    _epoch,
    _lognormal,
    _Picker,
    _rng,
)
from opsledger.demo.org import _Asset, _Job, _Org, _runbook_url, _Service

# --------------------------------------------------------------------------- the year


@dataclass
class _DeployedChange:
    deployed: int
    id: str
    service: int
    failed: bool
    used: bool = False


@dataclass
class _IncidentAlerting:
    """What the alert generator needs to attach alerts to an incident."""

    id: str
    service: int
    severity: int
    started: int
    detected: int
    acknowledged: int
    mitigated: int
    acker: str
    storm: bool


@dataclass
class _AlertBatch:
    rule: list[IntArray] = field(default_factory=list)
    asset: list[IntArray] = field(default_factory=list)
    fired: list[IntArray] = field(default_factory=list)
    duration: list[IntArray] = field(default_factory=list)
    ack: list[IntArray] = field(default_factory=list)  # delay in s, -1 = never
    incident: list[IntArray] = field(default_factory=list)  # index into the day's list

    def add(self, rule: IntArray, asset: IntArray, fired: IntArray, duration: IntArray,
            ack: IntArray, incident: IntArray | None = None) -> None:
        n = len(rule)
        none = np.full(n, -1, dtype=np.int64)
        self.rule.append(rule)
        self.asset.append(asset)
        self.fired.append(fired)
        self.duration.append(duration)
        self.ack.append(ack)
        self.incident.append(none if incident is None else incident)


def _done_at(rng: np.random.Generator, start: int, due_end: int, never: int,
             on_time: float, late_days: int) -> int:
    """When a piece of work is done (epoch seconds): by its due date with probability
    `on_time`, up to `late_days` after it with probability 0.96 - `on_time`, else `never`
    (not done in the window)."""
    u = rng.random()
    if u < on_time:
        return start + int(rng.integers(HOUR, due_end - start))
    if u < 0.96:
        return due_end + int(rng.integers(HOUR, late_days * DAY))
    return never


class _Year:
    """Generates the events of the window day by day."""

    def __init__(self, org: _Org, clock: _Clock, seed: int, scale: float) -> None:
        self.org = org
        self.clock = clock
        self.scale = scale
        names = ("alerts", "incidents", "changes", "backups", "vulns", "tasks", "work",
                 "provisioning", "monthly", "storms")
        self.rng = {name: _rng(seed, 100 + i) for i, name in enumerate(names)}
        self.year_fraction = clock.n_days / 365.0
        self.day_factor = self._day_factors()
        self._calibrate_alerts()
        self.deployed: deque[_DeployedChange] = deque()
        self.recent_incidents: deque[tuple[int, str, int, int]] = deque()
        self.buckets: dict[int, list[Record]] = {}
        self.seq: dict[str, int] = {}
        self.ticks = self._backup_ticks()
        self.vuln_eligible = self._vuln_eligibility()
        self.team_tasks = self._team_tasks()
        # per-team volumes (toil, work, surveys) follow the organisation's size
        self.per_team = scale * TEAMS / len(org.teams)
        self.alert_seq = 0

    # ------------------------------------------------------------------ utilities

    def next_id(self, kind: str) -> int:
        n = self.seq.get(kind, 0) + 1
        self.seq[kind] = n
        return n

    def _day_factors(self) -> FloatArray:
        rng = self.rng["alerts"]
        n = self.clock.n_days
        weekday = np.array([self.clock.weekday(d) for d in range(n)])
        f = np.where(weekday >= 5, 0.8, 1.0) * (1.0 + 0.12 * np.arange(n) / n)
        f *= np.exp(rng.normal(0.0, 0.12, n))  # good weeks and bad weeks
        return f.astype(np.float64)

    def oncall(self, team: int, t: int) -> str:
        people = self.org.teams[team].people
        week = (t - self.clock.t0) // (7 * DAY)
        return people[(week + team) % len(people)]

    def secondary(self, team: int, t: int) -> str:
        people = self.org.teams[team].people
        week = (t - self.clock.t0) // (7 * DAY)
        return people[(week + team + 1) % len(people)]

    def _calibrate_alerts(self) -> None:
        """Scale rule-instance rates so that the year has ~ALERTS_PER_YEAR * scale alerts.

        Never-acknowledged rules get ~12 % of the volume and flapping rules ~8 %, storms
        and incidents bring their own; the steady, mostly acknowledged rules the rest.
        """
        inst = self.org.instances
        days = float(self.day_factor.sum())
        mean_flaps = 9.0  # rng.integers(3, 16)
        storm_size = sum(_STORM_SIZE) / 2
        incident_storms = sum(_INCIDENT_RATE[s] * _INCIDENT_STORM_P[s] for s in (1, 2, 3))
        incident_alerts = sum(_INCIDENT_RATE[s] * sum(_INCIDENT_ALERTS[s]) / 2
                              for s in (1, 2, 3))
        storms = (_INDEPENDENT_STORMS_PER_YEAR + incident_storms) * storm_size
        per_year = self.scale * self.year_fraction
        special = inst.noisy | inst.flap
        classes = ((inst.noisy, 1.0, _NOISY_SHARE), (inst.flap, mean_flaps, _FLAP_SHARE))
        self.rate = inst.rate.copy()
        rest = ALERTS_PER_YEAR - storms - incident_alerts
        for mask, mult, share in classes:
            total = float(inst.rate[mask].sum()) * mult * days
            if total > 0:
                self.rate[mask] *= share * ALERTS_PER_YEAR * per_year / total
                rest -= share * ALERTS_PER_YEAR
        total = float(inst.rate[~special].sum()) * days
        if total > 0:
            self.rate[~special] *= max(rest, 0.0) * per_year / total
        self.storm_rate = _INDEPENDENT_STORMS_PER_YEAR * self.scale / 365.0

    # ------------------------------------------------------------------ main loop

    def events(self) -> Iterator[Record]:
        clock = self.clock
        for d in range(clock.n_days):
            date = clock.calendar(d)
            if date.day == 1:
                previous = clock.calendar(d - 1).replace(day=1)
                if previous >= clock.start:
                    yield from self._costs(previous)
                yield from self._month_start(d, date)
            yield from self._changes(d)
            yield from self._provisioning(d)
            incidents: list[_IncidentAlerting] = []
            yield from self._incidents(d, incidents)
            yield from self._alerts(d, incidents)
            yield from self._backup_runs(d)
            if clock.weekday(d) == 1:
                yield from self._vulnerabilities(d)
            yield from self._task_runs(d)
            yield from self._work_items(d)
            yield from self.buckets.pop(d, [])
        last = clock.calendar(clock.n_days - 1).replace(day=1)
        if last >= clock.start:
            yield from self._costs(last)

    # ------------------------------------------------------------------ changes

    def _changes(self, d: int) -> Iterator[Record]:
        rng = self.rng["changes"]
        wd = self.clock.weekday(d)
        n = int(rng.poisson((12.0 if wd < 5 else 1.0) * self.scale))
        cutoff = self.clock.day_start(d) - 3 * DAY
        while self.deployed and self.deployed[0].deployed < cutoff:
            self.deployed.popleft()
        for _ in range(n):
            yield self._change(rng, d, wd)

    def _change(self, rng: np.random.Generator, d: int, wd: int) -> Record:
        clock = self.clock
        org = self.org
        s = org.service_pick(rng)
        svc = org.services[s]
        n = self.next_id("change")
        ctype = ("standard", "normal", "emergency")[_CHANGE_TYPE(rng)]
        risk = ("low", "medium", "high")[_CHANGE_RISK[ctype](rng)]
        day_start = clock.day_start(d)
        if wd < 5:
            requested = day_start + int(rng.integers(8 * HOUR, 18 * HOUR))
        else:
            requested = day_start + int(rng.integers(0, DAY))
        if ctype == "emergency":
            started = requested + int(rng.integers(10 * MINUTE, 60 * MINUTE))
            deployed = started + int(rng.integers(10 * MINUTE, 90 * MINUTE))
            if rng.random() < 0.65:
                approved = deployed + int(rng.integers(30 * MINUTE, 2 * DAY))
            else:
                approved = requested + int(rng.integers(5 * MINUTE, 30 * MINUTE))
        else:
            if ctype == "standard":
                approved = requested + int(rng.integers(MINUTE, 20 * MINUTE))
                lead = int((0, 0, 1, 1, 2)[int(rng.integers(0, 5))])
            else:
                approve_day = _busday(clock.calendar(d), int(rng.integers(0, 4)))
                approved = max(requested + 30 * MINUTE,
                               _epoch(approve_day) + int(rng.integers(10 * HOUR, 17 * HOUR)))
                lead = min(1 + int(rng.geometric(0.33)) - 1, 14)
            deploy_day = _busday(dt.date.fromordinal(approved // DAY + _EPOCH_ORDINAL), lead)
            window_start = 20 * HOUR if risk == "high" else 9 * HOUR
            deployed = max(approved + 20 * MINUTE, _epoch(deploy_day) + window_start
                           + int(rng.integers(0, 3 * HOUR if risk == "high" else 8 * HOUR)))
            started = max(approved, deployed - int(rng.integers(5 * MINUTE, 120 * MINUTE)))
        p_fail = {"low": 0.022, "medium": 0.05, "high": 0.1}[risk]
        p_fail += 0.03 if ctype == "emergency" else 0.0
        u = rng.random()
        outcome = "success" if u >= p_fail else ("failed" if u < 0.4 * p_fail else
                                                 "rolled_back")
        title = _CHANGE_TITLES[int(rng.integers(0, len(_CHANGE_TITLES)))].format(svc=svc.id)
        rec: Record = {"kind": "change", "id": f"chg-{n:06d}", "title": title,
                       "service": svc.id, "type": ctype, "risk": risk,
                       "requested_at": clock.iso(requested)}
        if approved < clock.t_end:
            rec["approved_at"] = clock.iso(approved)
        if started < clock.t_end:
            rec["started_at"] = clock.iso(started)
        if deployed < clock.t_end:
            rec["deployed_at"] = clock.iso(deployed)
            rec["outcome"] = outcome
            self.deployed.append(_DeployedChange(deployed, str(rec["id"]), s,
                                                 outcome != "success"))
        if rng.random() < (0.6 if ctype == "standard" else 0.85):
            rec["rollback_plan"] = _ROLLBACK_PLANS[int(rng.integers(0, len(_ROLLBACK_PLANS)))]
        rec["ticket"] = f"CHG{1_040_000 + n}"
        return rec

    # ------------------------------------------------------------------ provisioning

    def _provisioning(self, d: int) -> Iterator[Record]:
        rng = self.rng["provisioning"]
        clock = self.clock
        wd = clock.weekday(d)
        n = int(rng.poisson((5.0 if wd < 5 else 0.4) * self.scale))
        p_auto = 0.62 + 0.26 * d / clock.n_days
        for _ in range(n):
            what, _, median = _PROVISIONING[_PROVISIONING_PICK(rng)]
            automated = bool(rng.random() < p_auto)
            if wd < 5:
                requested = clock.day_start(d) + int(rng.integers(8 * HOUR, 19 * HOUR))
            else:
                requested = clock.day_start(d) + int(rng.integers(0, DAY))
            minutes = (_lognormal(rng, median, 0.45) if automated
                       else _lognormal(rng, 26 * 60.0, 0.8))
            completed = requested + max(60, int(minutes * 60))
            rec: Record = {"kind": "provisioning",
                           "id": f"prov-{self.next_id('provisioning'):06d}",
                           "what": what, "requested_at": clock.iso(requested)}
            if completed < clock.t_end and rng.random() > 0.015:
                rec["completed_at"] = clock.iso(completed)
            rec["automated"] = automated
            yield rec

    # ------------------------------------------------------------------ incidents

    def _incidents(self, d: int, out: list[_IncidentAlerting]) -> Iterator[Record]:
        rng = self.rng["incidents"]
        clock = self.clock
        day_start = clock.day_start(d)
        while self.recent_incidents and self.recent_incidents[0][0] < day_start - 31 * DAY:
            self.recent_incidents.popleft()
        starts: list[tuple[int, int]] = []
        for sev in (1, 2, 3):
            for _ in range(int(rng.poisson(_INCIDENT_RATE[sev] * self.scale / 365.0))):
                starts.append((day_start + int(rng.integers(0, DAY)), sev))
        starts.sort()
        for started, sev in starts:
            yield from self._incident(rng, started, sev, out)

    def _pick_cause(self, rng: np.random.Generator, started: int,
                    sev: int) -> tuple[int, int, _DeployedChange | None, str | None]:
        """(cause, service, change, recurring key) of a new incident."""
        org = self.org
        if self.recent_incidents and rng.random() < 0.055:
            _, key, s, cause = self.recent_incidents[
                int(rng.integers(0, len(self.recent_incidents)))]
            return cause, s, None, key
        cause = _CAUSE_PICK(rng)
        if _CAUSES[cause][3]:
            cands = [c for c in self.deployed
                     if not c.used and started - 48 * HOUR <= c.deployed < started]
            if sev == 1:
                cands = [c for c in cands if org.services[c.service].tier != "standard"]
            if cands:
                failed = [c for c in cands if c.failed]
                pool = failed if failed and rng.random() < 0.45 else cands
                change = pool[int(rng.integers(0, len(pool)))]
                change.used = True
                return cause, change.service, change, None
            cause = _OTHER_CAUSES[int(rng.integers(0, len(_OTHER_CAUSES)))]
        s = org.severe_pick(rng) if sev == 1 else org.service_pick(rng)
        return cause, s, None, None

    def _incident(self, rng: np.random.Generator, started: int, sev: int,
                  out: list[_IncidentAlerting]) -> Iterator[Record]:
        clock = self.clock
        cause, s, change, key = self._pick_cause(rng, started, sev)
        svc = self.org.services[s]
        n = self.next_id("incident")
        inc_id = f"INC-{n:05d}"
        detected = started + int(_lognormal(rng, (4, 6, 12)[sev - 1] * MINUTE, 0.7))
        acked = detected + int(_lognormal(rng, (3, 6, 14)[sev - 1] * MINUTE, 0.7))
        restore_median = (40, 95, 200)[sev - 1] * MINUTE
        mitigated = max(acked + MINUTE,
                        started + int(_lognormal(rng, restore_median, 0.5 + 0.1 * sev)))
        resolved = mitigated + int(_lognormal(rng, 3 * HOUR, 1.0))
        cause_key, title, root_cause, _ = _CAUSES[cause]
        rec: Record = {"kind": "incident", "id": inc_id, "title": title.format(svc=svc.id),
                       "severity": sev, "service": svc.id, "started_at": clock.iso(started)}
        for name, t in (("detected_at", detected), ("acknowledged_at", acked),
                        ("mitigated_at", mitigated), ("resolved_at", resolved)):
            if t < clock.t_end:
                rec[name] = clock.iso(t)
        if key is None and (sev < 3 or rng.random() < 0.85):
            key = f"{cause_key}/{svc.id}"
        if key is not None and resolved < clock.t_end:
            rec["root_cause"] = root_cause
            rec["root_cause_key"] = key
            self.recent_incidents.append((started, key, s, cause))
        if change is not None:
            rec["caused_by_change"] = change.id
        acker = self.oncall(svc.team, acked)
        storm = rng.random() < _INCIDENT_STORM_P[sev]
        out.append(_IncidentAlerting(inc_id, s, sev, started, detected, acked, mitigated,
                                     acker, storm))
        yield rec
        yield from self._action_items(rng, inc_id, sev, started, svc, cause_key)

    def _action_items(self, rng: np.random.Generator, inc_id: str, sev: int, started: int,
                      svc: _Service, cause: str) -> Iterator[Record]:
        clock = self.clock
        count = {1: int(rng.integers(3, 6)), 2: int(rng.integers(1, 4)),
                 3: int(rng.poisson(0.4))}[sev]
        people = self.org.teams[svc.team].people
        for k in range(count):
            due_day = started // DAY + int(rng.integers(7, 31))
            due_end = (due_day + 1) * DAY
            if due_end > clock.t_end:
                continue
            rec: Record = {
                "kind": "action_item", "id": f"{inc_id}-AI{k + 1}",
                "incident": inc_id,
                "title": _ACTION_TITLES[int(rng.integers(0, len(_ACTION_TITLES)))].format(
                    svc=svc.id, cause=cause.replace("-", " ")),
                "owner": people[int(rng.integers(0, len(people)))],
                "due": clock.day_str(due_day),
            }
            done = _done_at(rng, started, due_end, clock.t_end, 0.86, 25)
            if done < clock.t_end:
                rec["completed_at"] = clock.iso(done)
            yield rec

    # ------------------------------------------------------------------ alerts

    def _alerts(self, d: int, incidents: list[_IncidentAlerting]) -> Iterator[Record]:
        rng = self.rng["alerts"]
        batch = _AlertBatch()
        day_start = self.clock.day_start(d)
        self._steady_alerts(rng, batch, d, day_start)
        storms = self.rng["storms"]
        for _ in range(int(storms.poisson(self.storm_rate * self.day_factor[d]))):
            self._storm(storms, batch, day_start + int(storms.integers(0, DAY)), None)
        for k, inc in enumerate(incidents):
            self._incident_alerts(rng, batch, k, inc)
            if inc.storm:
                self._storm(storms, batch, inc.started, (k, inc))
        yield from self._emit_alerts(d, batch, incidents)

    def _times_of_day(self, rng: np.random.Generator, day_start: int, n: int) -> IntArray:
        hours = rng.choice(24, size=n, p=_DIURNAL_P).astype(np.int64)
        return day_start + hours * HOUR + rng.integers(0, HOUR, n)

    def _pick_assets(self, rng: np.random.Generator, idx: IntArray) -> IntArray:
        inst = self.org.instances
        offs = inst.cand_offset[idx]
        cnt = inst.cand_count[idx]
        return inst.cand[offs + (rng.random(len(idx)) * cnt).astype(np.int64)]

    def _steady_alerts(self, rng: np.random.Generator, batch: _AlertBatch, d: int,
                       day_start: int) -> None:
        inst = self.org.instances
        counts = rng.poisson(self.rate * self.day_factor[d])
        sev_idx = _RULE_SEVERITY_INDEX[inst.rule]
        steady = np.where(inst.flap, 0, counts)
        idx = np.repeat(np.arange(len(counts)), steady)
        n = len(idx)
        fired = self._times_of_day(rng, day_start, n)
        med = _DURATION_MEDIAN[sev_idx[idx]]
        duration = (med * np.exp(rng.normal(0.0, 1.0, n))).clip(60, 2 * DAY).astype(np.int64)
        acked = rng.random(n) < inst.ack_p[idx]
        delay = (_ACK_MEDIAN[sev_idx[idx]] * np.exp(rng.normal(0.0, 0.8, n))).astype(np.int64)
        ack = np.where(acked, np.maximum(delay, 15), -1)
        batch.add(inst.rule[idx], self._pick_assets(rng, idx), fired, duration, ack)
        # flapping instances: each count is an episode of 3..15 short fire/resolve cycles
        episodes = np.where(inst.flap, counts, 0)
        eidx = np.repeat(np.arange(len(counts)), episodes)
        if len(eidx) == 0:
            return
        flaps = rng.integers(3, 16, len(eidx))
        spacing = rng.integers(3 * MINUTE, 15 * MINUTE, len(eidx))
        ep_start = self._times_of_day(rng, day_start, len(eidx))
        ep_asset = self._pick_assets(rng, eidx)
        total = int(flaps.sum())
        k = np.arange(total) - np.repeat(np.cumsum(flaps) - flaps, flaps)
        gap = np.repeat(spacing, flaps)
        fired = np.repeat(ep_start, flaps) + k * gap + rng.integers(0, 30, total)
        duration = (gap * rng.uniform(0.2, 0.7, total)).astype(np.int64)
        fidx = np.repeat(eidx, flaps)
        acked = rng.random(total) < inst.ack_p[fidx]
        ack = np.where(acked, rng.integers(MINUTE, 5 * MINUTE, total), -1)
        batch.add(inst.rule[fidx], np.repeat(ep_asset, flaps), fired, duration, ack)

    def _storm(self, rng: np.random.Generator, batch: _AlertBatch, start: int,
               incident: tuple[int, _IncidentAlerting] | None) -> None:
        """Hundreds of alerts of one rule across many targets within a few minutes."""
        org = self.org
        rule = _STORM_RULES[int(rng.integers(0, len(_STORM_RULES)))]
        if incident is not None:
            team = org.services[incident[1].service].team
        else:
            team = int(rng.integers(0, len(org.teams)))
        svcs = org.team_services[team] or [0]
        extra = rng.integers(0, len(org.services), int(rng.integers(0, 12)))
        chosen = np.unique(np.concatenate([np.array(svcs, dtype=np.int64), extra]))
        cand = np.concatenate([
            np.arange(org.svc_asset_start[s], org.svc_asset_start[s] + org.svc_asset_count[s])
            for s in chosen.tolist()])
        size = int(rng.integers(*_STORM_SIZE))
        spread = int(rng.integers(2 * MINUTE, 10 * MINUTE))
        fired = start + (rng.beta(1.2, 3.0, size) * spread).astype(np.int64)
        clear = start + int(rng.integers(10 * MINUTE, 50 * MINUTE))
        duration = np.maximum(clear - fired + rng.integers(0, 120, size), 30)
        ack = np.full(size, -1, dtype=np.int64)
        first = np.argsort(fired)[: int(rng.integers(1, 4))]
        ack[first] = rng.integers(2 * MINUTE, 10 * MINUTE, len(first))
        inc = np.full(size, -1, dtype=np.int64)
        if incident is not None:
            inc[rng.random(size) < 0.05] = incident[0]
            inc[first] = incident[0]
        batch.add(np.full(size, rule, dtype=np.int64),
                  cand[rng.integers(0, len(cand), size)], fired, duration.astype(np.int64),
                  ack, inc)

    def _incident_alerts(self, rng: np.random.Generator, batch: _AlertBatch, k: int,
                         inc: _IncidentAlerting) -> None:
        inst = self.org.instances
        own = np.flatnonzero(inst.service == inc.service)
        sev_idx = _RULE_SEVERITY_INDEX[inst.rule[own]]
        preferred = own[sev_idx == 0]
        pool = preferred if len(preferred) else own
        if len(pool) == 0:
            return
        low, high = _INCIDENT_ALERTS[inc.severity]
        n = int(rng.integers(low, high + 1))
        idx = pool[rng.integers(0, len(pool), n)]
        fired = inc.started + (rng.random(n) * max(60, inc.detected - inc.started + 600)
                               ).astype(np.int64)
        fired[0] = inc.detected - int(rng.integers(0, 60))
        fired = np.maximum(fired, inc.started)
        duration = np.maximum(inc.mitigated - fired + rng.integers(0, 600, n), 60)
        ack = np.where(rng.random(n) < 0.45,
                       np.maximum(inc.acknowledged - fired, 0) + rng.integers(0, 300, n), -1)
        ack[0] = max(inc.acknowledged - int(fired[0]), 0)
        batch.add(inst.rule[idx], self._pick_assets(rng, idx), fired,
                  duration.astype(np.int64), ack.astype(np.int64),
                  np.full(n, k, dtype=np.int64))

    def _emit_alerts(self, d: int, batch: _AlertBatch,
                     incidents: list[_IncidentAlerting]) -> Iterator[Record]:
        if not batch.rule:
            return
        org = self.org
        clock = self.clock
        t_end = clock.t_end
        fired_all = np.concatenate(batch.fired)
        order = np.argsort(fired_all, kind="stable")
        cols = [np.concatenate(c)[order].tolist() for c in
                (batch.rule, batch.asset, batch.duration, batch.ack, batch.incident)]
        explicit = self.rng["alerts"].random(len(order))
        iso = clock.iso
        services = org.services
        assets = org.assets
        team_ids = [team.id for team in org.teams]
        day_start = clock.day_start(d)
        primary = [self.oncall(k, day_start) for k in range(len(org.teams))]
        secondary = [self.secondary(k, day_start) for k in range(len(org.teams))]
        seq = self.alert_seq
        for fired, r, a, dur, ack, inc, u in zip(
                fired_all[order].tolist(), *cols, explicit.tolist(), strict=True):
            if fired >= t_end:
                continue
            rule = _RULES[r]
            asset = assets[a]
            svc = services[asset.service]
            seq += 1
            rec: Record = {
                "kind": "alert", "id": f"al-{seq:08d}", "name": rule.name,
                "source": svc.monitoring if rule.source == "alertmanager" else rule.source,
                "service": svc.id, "severity": rule.severity, "fired_at": iso(fired),
            }
            if fired + dur < t_end:
                rec["resolved_at"] = iso(fired + dur)
            acked = ack >= 0 and fired + ack < t_end
            if acked:
                rec["acknowledged_at"] = iso(fired + ack)
                if inc >= 0:
                    rec["acknowledged_by"] = incidents[inc].acker
                else:
                    rec["acknowledged_by"] = (secondary if seq % 9 == 0 else primary)[svc.team]
            if u < 0.06:  # triaged by hand: an explicit verdict, sometimes "false positive"
                rec["actionable"] = (acked or inc >= 0) != (u < 0.008)
            if inc >= 0:
                rec["incident"] = incidents[inc].id
            url = _RUNBOOK_URLS[r]
            if url is not None:
                rec["runbook_url"] = url
            rec["labels"] = {
                "alertname": rule.name, "severity": rule.severity, "service": svc.id,
                "team": team_ids[svc.team], "env": asset.env, "job": rule.job,
                "instance": (f"https://{svc.id}.example.com/healthz"
                             if rule.family == "blackbox" else asset.id + rule.port),
            }
            self.alert_seq = seq
            yield rec

    # ------------------------------------------------------------------ backups

    def _backup_ticks(self) -> tuple[IntArray, IntArray, IntArray]:
        """Tick times and jobs of the year sorted by time, and each day's slice bounds.

        Unscheduled jobs get irregular run times instead of ticks.
        """
        clock = self.clock
        days = clock.t0 + DAY * np.arange(clock.n_days, dtype=np.int64)
        cron_dow = (np.array([clock.weekday(d) for d in range(clock.n_days)]) + 1) % 7
        times: list[IntArray] = []
        jobs: list[IntArray] = []
        for j, job in enumerate(self.org.jobs):
            if job.since is None:
                gaps = self.rng["backups"].integers(2 * DAY, 9 * DAY, clock.n_days // 2)
                t = clock.t0 + HOUR * 10 + np.cumsum(gaps)
                t = t[t < clock.t_end - DAY]
            else:
                t = self._job_ticks(job, job.hours, days, cron_dow)
                t = t[t >= job.since]
                if job.old_hours is not None:
                    old = self._job_ticks(job, job.old_hours, days, cron_dow)
                    t = np.concatenate([old[old < job.since], t])
            times.append(t.astype(np.int64))
            jobs.append(np.full(len(t), j, dtype=np.int64))
        if not times:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        all_t = np.concatenate(times)
        all_j = np.concatenate(jobs)
        order = np.argsort(all_t, kind="stable")
        bounds = np.searchsorted(all_t[order], clock.t0 + DAY * np.arange(clock.n_days + 1))
        return all_t[order], all_j[order], bounds.astype(np.int64)

    def _job_ticks(self, job: _Job, hours: tuple[int, ...], days: IntArray,
                   cron_dow: IntArray) -> IntArray:
        mask = np.ones(len(days), dtype=np.bool_) if job.dows is None else np.isin(
            cron_dow, list(job.dows))
        offs = np.array([h * HOUR + job.minute * MINUTE for h in hours], dtype=np.int64)
        return (days[mask][:, None] + offs[None, :]).ravel()

    def _backup_runs(self, d: int) -> Iterator[Record]:
        all_t, all_j, bounds = self.ticks
        lo, hi = int(bounds[d]), int(bounds[d + 1])
        if lo == hi:
            return
        rng = self.rng["backups"]
        clock = self.clock
        n = hi - lo
        u = rng.random(n)
        offset = rng.integers(20, 50 * MINUTE, n)
        jitter = np.exp(rng.normal(0.0, 0.25, n))
        growth = 1.0 + 0.25 * d / clock.n_days
        for tick, j, ui, off, jit in zip(all_t[lo:hi].tolist(), all_j[lo:hi].tolist(),
                                         u.tolist(), offset.tolist(), jitter.tolist(),
                                         strict=True):
            job = self.org.jobs[j]
            if ui < _BACKUP_MISSED_P and job.since is not None:
                continue  # silent failure: the scheduler never started it
            failed = ui < _BACKUP_MISSED_P + _BACKUP_FAILED_P
            size = job.base_bytes * growth * jit
            started = tick + off
            secs = int(120 + size / 150e6 * (0.2 if failed else 1.0))
            rec: Record = {"kind": "backup_run", "id": f"br-{self.next_id('backup_run'):07d}",
                           "job": job.id}
            if job.since is not None:
                rec["scheduled_at"] = clock.iso(tick)
            rec["started_at"] = clock.iso(started)
            rec["finished_at"] = clock.iso(min(started + secs, clock.t_end - 1))
            rec["status"] = "failed" if failed else "success"
            if not failed:
                rec["bytes"] = int(size)
            yield rec
            if failed and job.since is not None and rng.random() < 0.5:
                rerun = tick + int(rng.integers(2 * HOUR, 5 * HOUR))
                if rerun + secs < clock.t_end:
                    yield {"kind": "backup_run",
                           "id": f"br-{self.next_id('backup_run'):07d}", "job": job.id,
                           "started_at": clock.iso(rerun),
                           "finished_at": clock.iso(rerun + secs), "status": "success",
                           "bytes": int(size)}

    # ------------------------------------------------------------------ vulnerabilities

    def _vuln_eligibility(self) -> dict[str, IntArray]:
        assets = self.org.assets
        tests: dict[str, Callable[[_Asset], bool]] = {
            "linux": lambda a: a.os not in (None, "windows", "distroless"),
            "os": lambda a: a.type in ("host", "vm") and a.os not in (None, "windows"),
            "container": lambda a: a.type == "container",
            "alpine": lambda a: a.os == "alpine",
            "database": lambda a: a.type == "database",
            "windows": lambda a: a.os == "windows",
        }
        out: dict[str, IntArray] = {}
        for name, test in tests.items():
            out[name] = np.array([i for i, a in enumerate(assets) if test(a)], dtype=np.int64)
        return out

    def _vulnerabilities(self, d: int) -> Iterator[Record]:
        """A weekly scan: a handful of new advisories, each hitting a share of assets."""
        rng = self.rng["vulns"]
        clock = self.clock
        wave = clock.day_start(d) + 2 * HOUR
        for _ in range(1 + int(rng.poisson(6.0))):
            package, filt, weights = _PACKAGES[int(rng.integers(0, len(_PACKAGES)))]
            elig = self.vuln_eligible[filt]
            if len(elig) == 0:
                continue
            sev = _Picker(weights)(rng)
            cve = f"CVE-{clock.calendar(d).year - int(rng.random() < 0.3)}-" \
                  f"{int(rng.integers(1000, 52000))}"
            hit = elig[rng.random(len(elig)) < rng.uniform(0.01, 0.14)]
            for a in hit.tolist():
                yield self._finding(rng, a, package, cve, sev,
                                    wave + int(rng.integers(0, 6 * HOUR)))

    def _finding(self, rng: np.random.Generator, a: int, package: str, cve: str, sev: int,
                 first_seen: int) -> Record:
        clock = self.clock
        sla = _SLA_DAYS[sev] * DAY
        rec: Record = {"kind": "vulnerability", "id": f"vuln-{self.next_id('vuln'):07d}",
                       "asset": self.org.assets[a].id, "cve": cve, "package": package,
                       "severity": _SEVERITIES[sev], "first_seen": clock.iso(first_seen)}
        u = rng.random()
        fixed: int | None
        if u < _RISK_ACCEPTED_P:
            fixed = None
            rec["accepted_until"] = clock.iso(first_seen + sla + int(rng.integers(60, 181)) * DAY)
        elif u < _RISK_ACCEPTED_P + _NEVER_FIXED_P:
            fixed = None
        elif u < _RISK_ACCEPTED_P + _NEVER_FIXED_P + _ON_TIME_P[sev]:
            fixed = first_seen + max(2 * HOUR, int(sla * rng.beta(1.6, 2.6)))
        else:
            fixed = first_seen + sla + int(sla * rng.exponential(0.4)) + HOUR
        if fixed is not None and fixed < clock.t_end:
            rec["fixed_at"] = clock.iso(fixed)
        return rec

    # ------------------------------------------------------------------ toil and work

    def _team_tasks(self) -> list[list[tuple[int, float, int]]]:
        """Per team: (task, runs per day, automated-from day; -1 always, big = never)."""
        rng = self.rng["tasks"]
        out: list[list[tuple[int, float, int]]] = []
        n = self.clock.n_days
        for _ in self.org.teams:
            mult = float(rng.uniform(0.7, 1.3))
            rows = []
            for t in rng.permutation(len(_TASKS))[:8].tolist():
                u = rng.random()
                auto_from = -1 if u < 0.3 else (
                    int(rng.integers(30, n - 30)) if u < 0.7 else 10 * n)
                rows.append((t, _TASKS[t][2] * mult / 5.5, auto_from))
            out.append(rows)
        return out

    def _task_runs(self, d: int) -> Iterator[Record]:
        rng = self.rng["tasks"]
        clock = self.clock
        busy = 1.3 if clock.weekday(d) < 5 else 0.25
        for team, rows in enumerate(self.team_tasks):
            for t, per_day, auto_from in rows:
                for _ in range(int(rng.poisson(per_day * busy * self.per_team))):
                    automated = bool(rng.random() < (0.93 if d >= auto_from else 0.04))
                    if automated:
                        when = clock.day_start(d) + int(rng.integers(0, DAY))
                        minutes = round(float(rng.uniform(0.5, 6.0)), 1)
                    else:
                        when = clock.day_start(d) + int(rng.integers(8 * HOUR, 19 * HOUR))
                        minutes = round(_lognormal(rng, _TASKS[t][1], 0.5))
                    yield {"kind": "task_run", "id": f"task-{self.next_id('task'):07d}",
                           "task": _TASKS[t][0], "team": self.org.teams[team].id,
                           "performed_at": clock.iso(when), "automated": automated,
                           "minutes": max(1, minutes) if not automated else minutes}

    def _work_items(self, d: int) -> Iterator[Record]:
        rng = self.rng["work"]
        clock = self.clock
        if clock.weekday(d) >= 5:
            return
        for team, services in enumerate(self.org.team_services):
            if not services:
                continue
            for _ in range(int(rng.poisson(0.8 * self.per_team))):
                committed = clock.day_start(d) + int(rng.integers(9 * HOUR, 18 * HOUR))
                due_day = committed // DAY + int(rng.integers(5, 42))
                due_end = (due_day + 1) * DAY
                if due_end > clock.t_end:
                    continue
                svc = self.org.services[services[int(rng.integers(0, len(services)))]]
                title = _WORK_TITLES[int(rng.integers(0, len(_WORK_TITLES)))]
                rec: Record = {"kind": "work_item",
                               "id": f"WORK-{self.next_id('work'):05d}",
                               "team": self.org.teams[team].id,
                               "title": title.format(svc=svc.id),
                               "committed_at": clock.iso(committed),
                               "due": clock.day_str(due_day)}
                done = _done_at(rng, committed, due_end, clock.t_end, 0.87, 20)
                if done < clock.t_end:
                    rec["completed_at"] = clock.iso(done)
                yield rec

    # ------------------------------------------------------------------ monthly

    def _month_start(self, d: int, date: dt.date) -> Iterator[Record]:
        rng = self.rng["monthly"]
        clock = self.clock
        month = date.strftime("%Y-%m")
        next_month = (date.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        month_days = min((next_month - date).days, clock.n_days - d)
        for team in range(len(self.org.teams)):
            yield {"kind": "budget", "id": f"budget-{self.org.teams[team].id}-{month}",
                   "scope": self.org.teams[team].id, "month": month,
                   "amount": round(self._team_budget(team, d), 2), "currency": "USD"}
        self._schedule_restore_tests(rng, d, date, month_days)
        self._schedule_forecasts(rng, d, date)
        self._schedule_surveys(rng, d, month_days)

    def _team_budget(self, team: int, d: int) -> float:
        base = 18_000.0 + 9_000.0 * len(self.org.team_services[team])
        return base * (1.0 + 0.04 * d / self.clock.n_days)

    def _costs(self, month_first: dt.date) -> Iterator[Record]:
        rng = self.rng["monthly"]
        d = (month_first - self.clock.start).days
        month = month_first.strftime("%Y-%m")
        for team in range(len(self.org.teams)):
            bias = (0.14, -0.06, -0.03, 0.01, -0.08, 0.2, -0.04, -0.02)[team % 8]
            amount = self._team_budget(team, max(d, 0)) * (1.0 + bias + rng.normal(0, 0.04))
            yield {"kind": "cost", "id": f"cost-{self.org.teams[team].id}-{month}",
                   "scope": self.org.teams[team].id, "month": month,
                   "amount": round(float(amount), 2), "currency": "USD"}

    def _bucket(self, t: int, rec: Record) -> None:
        self.buckets.setdefault(self.clock.day_of(t), []).append(rec)

    def _schedule_restore_tests(self, rng: np.random.Generator, d: int, date: dt.date,
                                month_days: int) -> None:
        clock = self.clock
        for j, job in enumerate(self.org.jobs):
            if not job.critical and (j + date.month) % 3:
                continue
            day = d + int(rng.integers(0, max(1, month_days - 2)))
            if clock.weekday(day) >= 5:
                day = max(d, day - (clock.weekday(day) - 4))
            started = clock.day_start(day) + int(rng.integers(9 * HOUR, 16 * HOUR))
            if job.since is not None and started < job.since + 2 * DAY:
                continue
            finished = started + int(_lognormal(rng, 45 * MINUTE, 0.6))
            if finished >= clock.t_end:
                continue
            self._bucket(started, {
                "kind": "restore_test", "id": f"rt-{self.next_id('restore'):05d}",
                "job": job.id, "started_at": clock.iso(started),
                "finished_at": clock.iso(finished),
                "passed": bool(rng.random() < _RESTORE_PASS_P),
                "rto_minutes": 60 if job.critical else 240})

    def _schedule_forecasts(self, rng: np.random.Generator, d: int, date: dt.date) -> None:
        """Month-ahead forecasts of key resources, quarter-ahead ones for critical services."""
        clock = self.clock
        made_day = d + int(rng.integers(0, 3))
        for s, svc in enumerate(self.org.services):
            if svc.tier == "standard" and s % 4:
                continue
            resource, base = _CAPACITY_RESOURCES[
                0 if svc.kind in _STATEFUL_KINDS else 1 + s % 2]
            base *= 1.0 + (s * 7919 % 40) / 8.0
            horizons = (1, 3) if svc.tier == "critical" and date.month % 3 == 1 else (1,)
            for months in horizons:
                y, m = divmod(date.month - 1 + months, 12)
                target = dt.date(date.year + y, m + 1, 15)
                if _epoch(target) >= clock.t_end:
                    continue
                made = clock.day_start(made_day) + int(rng.integers(9 * HOUR, 12 * HOUR))
                days_ahead = (_epoch(target) - clock.t0) / DAY
                actual = base * (1.0 + 0.25 * days_ahead / 365.0) * float(
                    np.exp(rng.normal(0.0, 0.04)))
                if rng.random() < 0.88:
                    err = float(rng.normal(0.0, 0.035 + 0.025 * months))
                else:  # a launch or a migration nobody told capacity planning about
                    err = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.17, 0.45))
                rec: Record = {
                    "kind": "capacity_forecast",
                    "id": f"fc-{svc.id}-{resource}-{date:%Y-%m}-{months}m",
                    "resource": f"{svc.id}/{resource}", "service": svc.id,
                    "made_at": clock.iso(made), "target_date": target.isoformat(),
                    "forecast": round(actual * (1.0 + err), 1)}
                if rng.random() < 0.97:
                    rec["actual"] = round(actual, 1)
                self._bucket(made, rec)

    def _schedule_surveys(self, rng: np.random.Generator, d: int, month_days: int) -> None:
        clock = self.clock
        for team in self.org.teams:
            for _ in range(int(rng.poisson(8.0 * max(self.per_team, 0.3)))):
                day = d + int(rng.integers(min(7, month_days - 1), max(8, month_days - 5)))
                day = min(day, clock.n_days - 1)
                t = clock.day_start(day) + int(rng.integers(8 * HOUR, 20 * HOUR))
                self._bucket(t, {
                    "kind": "survey_response", "id": f"srv-{self.next_id('survey'):06d}",
                    "team": team.id, "submitted_at": clock.iso(t),
                    "score": 1 + _SURVEY_PICK(rng)})


_CHANGE_TYPE: Final = _Picker([0.55, 0.38, 0.07])
_CHANGE_RISK: Final = {
    "standard": _Picker([0.9, 0.1, 0.0]),
    "normal": _Picker([0.45, 0.4, 0.15]),
    "emergency": _Picker([0.0, 0.5, 0.5]),
}
_PROVISIONING_PICK: Final = _Picker([share for _, share, _ in _PROVISIONING])
_CAUSE_PICK: Final = _Picker(_CAUSE_WEIGHTS)
_SURVEY_PICK: Final = _Picker(_SURVEY_SCORE_P)
_SEVERITY_ORDER: Final = ("critical", "warning", "info")
_RULE_SEVERITY_INDEX: Final = np.array(
    [_SEVERITY_ORDER.index(r.severity) for r in _RULES], dtype=np.int64)
_DURATION_MEDIAN: Final = np.array(
    [_DURATION_MEDIAN_S[s] for s in _SEVERITY_ORDER], dtype=np.float64)
_ACK_MEDIAN: Final = np.array([_ACK_MEDIAN_S[s] for s in _SEVERITY_ORDER], dtype=np.float64)
_RUNBOOK_URLS: Final = tuple(_runbook_url(r) for r in _RULES)


