"""The demo organisation: teams, services, assets, backup jobs, alert-rule instances, and the
reference records made of them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from opsledger.demo.catalogues import (
    _ACK_P,
    _BACKUP_SLOT_MINUTES,
    _BACKUP_TOOLS,
    _COMPONENTS,
    _CONTAINER_OS,
    _DOMAINS,
    _ENGINE_VERSIONS,
    _FIRST_NAMES,
    _LINUX,
    _REGIONS,
    _RULES,
    _SEVERITY_WEIGHT,
    _STATEFUL_KINDS,
    _SURNAMES,
    _TEAM_NAMES,
    _Rule,
)
from opsledger.demo.common import (
    DAY,
    HOUR,
    SERVICES,
    TEAMS,
    BoolArray,
    FloatArray,
    IntArray,
    Record,
    _Clock,
    _Picker,
    _rng,
)

# --------------------------------------------------------------------------- organisation


@dataclass
class _Team:
    id: str
    name: str
    people: list[str]


@dataclass
class _Service:
    id: str
    team: int
    tier: str
    kind: str
    monitoring: str
    engine: str
    managed_db: bool


@dataclass
class _Asset:
    id: str
    type: str
    service: int
    env: str
    os: str | None
    os_version: str | None
    tags: dict[str, str]


@dataclass
class _Job:
    id: str
    service: int
    critical: bool
    minute: int
    hours: tuple[int, ...]
    dows: frozenset[int] | None  # cron day of week (0 = Sunday); None = every day
    since: int | None  # epoch seconds; None = unscheduled job
    rpo_hours: int | None
    base_bytes: float
    old_hours: tuple[int, ...] | None = None  # schedule before ``since`` (changed jobs)

    @property
    def schedule(self) -> str | None:
        if self.since is None:
            return None
        hours = ",".join(str(h) for h in self.hours)
        if len(self.hours) > 1 and self.hours == tuple(range(self.hours[0], 24, 6)):
            hours = "*/6" if self.hours[0] == 0 else f"{self.hours[0]}-23/6"
        dow = "*" if self.dows is None else ",".join(str(x) for x in sorted(self.dows))
        if self.dows == frozenset(range(1, 6)):
            dow = "1-5"
        return f"{self.minute} {hours} * * {dow}"


@dataclass
class _RuleInstances:
    """One row per (rule, service) pair that can fire, as parallel arrays."""

    rule: IntArray
    service: IntArray
    rate: FloatArray  # relative alert (or flap episode) rate, calibrated by _Year
    ack_p: FloatArray
    flap: BoolArray
    noisy: BoolArray  # never acknowledged
    cand_offset: IntArray  # candidate assets for the instance label: cand[offset:offset+n]
    cand_count: IntArray
    cand: IntArray


@dataclass
class _Org:
    teams: list[_Team]
    services: list[_Service]
    assets: list[_Asset]
    svc_asset_start: IntArray
    svc_asset_count: IntArray
    asset_service: IntArray
    jobs: list[_Job]
    instances: _RuleInstances
    service_pick: _Picker  # by tier, for incidents and changes
    severe_pick: _Picker  # critical/high services only (Sev-1)
    team_services: list[list[int]] = field(default_factory=list)


def _build_teams(rng: np.random.Generator, scale: float) -> list[_Team]:
    n_teams = max(2, round(TEAMS * math.sqrt(scale)))
    names: list[tuple[str, str]] = []
    for k in range(n_teams):
        tid, name = _TEAM_NAMES[k % len(_TEAM_NAMES)]
        if k >= len(_TEAM_NAMES):
            tid, name = f"{tid}-{k // len(_TEAM_NAMES) + 1}", f"{name} {k // len(_TEAM_NAMES) + 1}"
        names.append((tid, name))
    pool = [f"{f}.{s}" for f in _FIRST_NAMES for s in _SURNAMES]
    order = rng.permutation(len(pool))
    teams: list[_Team] = []
    per_team = 6
    for k, (tid, name) in enumerate(names):
        people = [pool[int(order[(k * per_team + j) % len(pool)])] for j in range(per_team)]
        teams.append(_Team(tid, name, people))
    return teams


def _service_names(rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
    """``n`` unique (service id, domain, kind) triples."""
    combos = [(d, c, k) for d in _DOMAINS for c, k in _COMPONENTS]
    order = rng.permutation(len(combos))
    out: list[tuple[str, str, str]] = []
    for i in range(n):
        dom, comp, kind = combos[int(order[i % len(combos)])]
        suffix = "" if i < len(combos) else f"-{i // len(combos) + 1}"
        out.append((f"{dom}-{comp}{suffix}", dom, kind))
    return out


def _build_services(rng: np.random.Generator, scale: float, n_teams: int) -> list[_Service]:
    n = max(4, round(SERVICES * scale))
    domain_team = {dom: int(t) for dom, t in zip(
        _DOMAINS, rng.integers(0, n_teams, len(_DOMAINS)), strict=True)}
    tier_pick = _Picker([0.15, 0.3, 0.55])
    services: list[_Service] = []
    for i, (sid, dom, kind) in enumerate(_service_names(rng, n)):
        team = domain_team[dom] if i >= n_teams else i  # every team owns something
        tier = ("critical", "high", "standard")[tier_pick(rng)]
        monitoring = "datadog" if rng.random() < 0.18 else "alertmanager"
        engine = "mysql" if rng.random() < 0.28 else "postgresql"
        services.append(_Service(sid, team, tier, kind, monitoring, engine,
                                 managed_db=bool(rng.random() < 0.3)))
    return services


def _asset_types(kind: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    if kind == "database":
        return ("database", "vm", "host"), (0.6, 0.3, 0.1)
    if kind in ("cache", "queue", "storage"):
        return ("vm", "container", "host"), (0.5, 0.25, 0.25)
    return ("container", "vm", "host"), (0.7, 0.25, 0.05)


_TYPE_SHORT: Final = {"host": "bm", "vm": "vm", "container": "ctr", "database": "db"}
_ENV_SHORT: Final = {"prod": "prod", "stage": "stg", "dev": "dev"}


def _build_assets(rng: np.random.Generator, services: list[_Service],
                  teams: list[_Team]) -> list[_Asset]:
    linux = _Picker([w for _, _, w in _LINUX])
    cont = _Picker([w for _, _, w in _CONTAINER_OS])
    env_pick = _Picker([0.55, 0.25, 0.2])
    assets: list[_Asset] = []
    for s, svc in enumerate(services):
        types, weights = _asset_types(svc.kind)
        type_pick = _Picker(weights)
        region = _REGIONS[int(rng.integers(0, len(_REGIONS)))]
        counters: dict[tuple[str, str], int] = {}
        for j in range(1 + int(rng.poisson(4.0))):
            atype = types[0] if j == 0 else types[type_pick(rng)]
            env = "prod" if j == 0 else ("prod", "stage", "dev")[env_pick(rng)]
            n = counters.get((atype, env), 0) + 1
            counters[(atype, env)] = n
            host = f"{svc.id}-{_ENV_SHORT[env]}-{_TYPE_SHORT[atype]}{n:02d}"
            tags = {"env": env, "team": teams[svc.team].id, "region": region,
                    "tier": svc.tier, "cost_center": f"cc-{1000 + svc.team}"}
            os_name: str | None
            os_version: str | None
            if atype == "container":
                os_name, os_version, _ = _CONTAINER_OS[cont(rng)]
                tags["managed_by"] = "helm"
                tags["cluster"] = f"k8s-{region}-{env}"
            elif atype == "database":
                versions = _ENGINE_VERSIONS[svc.engine]
                tags["engine"] = svc.engine
                tags["engine_version"] = versions[int(rng.integers(0, len(versions)))]
                if svc.managed_db:
                    os_name = os_version = None
                    tags["managed_by"] = "terraform"
                    tags["platform"] = "rds"
                else:
                    os_name, os_version, _ = _LINUX[linux(rng) % 5]
                    tags["managed_by"] = "ansible"
            else:
                os_name, os_version, _ = _LINUX[linux(rng)]
                tags["managed_by"] = "terraform" if atype == "vm" else "ansible"
            assets.append(_Asset(host, atype, s, env, os_name, os_version, tags))
    return assets


def _rule_families(svc: _Service, types: set[str]) -> list[str]:
    fams = ["app"]
    if types & {"host", "vm"}:
        fams.append("node")
    if "container" in types:
        fams.append("kube")
    if "database" in types:
        fams.append("db-rds" if svc.managed_db else f"db-{svc.engine}")
    if svc.kind in ("cache", "queue"):
        fams.append(svc.kind)
    if svc.kind in ("web", "api", "gateway"):
        fams.append("blackbox")
    if svc.kind == "gateway":
        fams.append("elb")
    return fams


_FAMILY_TYPES: Final = {
    "node": {"host", "vm"}, "kube": {"container"}, "db-postgresql": {"database"},
    "db-mysql": {"database"}, "db-rds": {"database"},
}


def _build_instances(rng: np.random.Generator, org_services: list[_Service],
                     assets: list[_Asset], svc_start: IntArray,
                     svc_count: IntArray) -> _RuleInstances:
    by_family: dict[str, list[int]] = {}
    for i, rule in enumerate(_RULES):
        by_family.setdefault(rule.family, []).append(i)
    rows_rule: list[int] = []
    rows_svc: list[int] = []
    rows_weight: list[float] = []
    rows_ack: list[float] = []
    rows_flap: list[bool] = []
    rows_noisy: list[bool] = []
    cand_offset: list[int] = []
    cand_count: list[int] = []
    cand: list[int] = []
    for s, svc in enumerate(org_services):
        own = range(int(svc_start[s]), int(svc_start[s] + svc_count[s]))
        types = {assets[a].type for a in own}
        prod = [a for a in own if assets[a].env == "prod"]
        tier_w = {"critical": 1.3, "high": 1.1, "standard": 0.9}[svc.tier]
        for fam in _rule_families(svc, types):
            members = by_family[fam]
            keep = rng.random(len(members)) < (0.9 if fam in ("app", "blackbox") else 0.6)
            want = _FAMILY_TYPES.get(fam)
            pool = prod if want is None else [a for a in own if assets[a].type in want]
            pool = pool or list(own)
            for r, k in zip(members, keep.tolist(), strict=True):
                if not k:
                    continue
                rule = _RULES[r]
                noisy = rng.random() < rule.noisy
                flap = (not noisy) and rng.random() < rule.flappy
                rows_rule.append(r)
                rows_svc.append(s)
                rows_weight.append(float(np.exp(rng.normal(0.0, 0.9)))
                                   * _SEVERITY_WEIGHT[rule.severity] * tier_w)
                ack = min(0.995, _ACK_P[rule.severity] * float(rng.uniform(0.9, 1.08)))
                rows_ack.append(0.0 if noisy else (0.05 if flap else ack))
                rows_flap.append(flap)
                rows_noisy.append(noisy)
                cand_offset.append(len(cand))
                cand_count.append(len(pool))
                cand.extend(pool)
    return _RuleInstances(
        rule=np.array(rows_rule, dtype=np.int64),
        service=np.array(rows_svc, dtype=np.int64),
        rate=np.array(rows_weight, dtype=np.float64),
        ack_p=np.array(rows_ack, dtype=np.float64),
        flap=np.array(rows_flap, dtype=np.bool_),
        noisy=np.array(rows_noisy, dtype=np.bool_),
        cand_offset=np.array(cand_offset, dtype=np.int64),
        cand_count=np.array(cand_count, dtype=np.int64),
        cand=np.array(cand, dtype=np.int64),
    )


def _build_jobs(rng: np.random.Generator, services: list[_Service],
                clock: _Clock) -> list[_Job]:
    jobs: list[_Job] = []
    for s, svc in enumerate(services):
        stateful = svc.kind in _STATEFUL_KINDS
        if not stateful and rng.random() > 0.22:
            continue
        tools = _BACKUP_TOOLS.get(svc.kind, _BACKUP_TOOLS["other"])
        n_jobs = 2 if (stateful and len(tools) > 1 and rng.random() < 0.3) else 1
        chosen = rng.permutation(len(tools))[:n_jobs]
        for t in chosen.tolist():
            jobs.append(_make_job(rng, f"{svc.id}-{tools[t]}", s, svc, clock))
    return jobs


def _make_job(rng: np.random.Generator, job_id: str, s: int, svc: _Service,
              clock: _Clock) -> _Job:
    critical = svc.tier == "critical" or (svc.tier == "high" and rng.random() < 0.4)
    u = rng.random()
    minute = _BACKUP_SLOT_MINUTES[int(rng.integers(0, len(_BACKUP_SLOT_MINUTES)))]
    dows: frozenset[int] | None = None
    if u < 0.03:  # ad-hoc exports, no schedule
        return _Job(job_id, s, critical, 0, (), None, None, None,
                    float(np.exp(rng.normal(23.0, 1.2))))
    if u < 0.14:
        start_hour = int(rng.integers(0, 2))
        hours: tuple[int, ...] = tuple(range(start_hour, 24, 6))
        rpo = 6
    elif u < 0.22:
        hours = (int(rng.integers(2, 5)),)
        dows = frozenset({int(rng.choice([0, 6]))})
        rpo = 168
    elif u < 0.25:
        hours = (int(rng.integers(20, 23)),)
        dows = frozenset(range(1, 6))
        rpo = 72
    else:
        hours = (int(rng.integers(0, 5)),)
        rpo = 24
    since = clock.t0
    old_hours: tuple[int, ...] | None = None
    v = rng.random()
    if v < 0.08:  # added during the year
        since = clock.day_start(int(rng.integers(20, clock.n_days - 60)))
    elif v < 0.13 and len(hours) == 1:  # schedule moved during the year
        since = clock.day_start(int(rng.integers(60, clock.n_days - 60)))
        old_hours = ((hours[0] + 2) % 24,)
    return _Job(job_id, s, critical, minute, hours, dows, since, rpo,
                float(np.exp(rng.normal(23.5 if svc.kind == "database" else 22.0, 1.3))),
                old_hours)


def _build_org(seed: int, scale: float, clock: _Clock) -> _Org:
    rng = _rng(seed, 1)
    teams = _build_teams(rng, scale)
    services = _build_services(rng, scale, len(teams))
    assets = _build_assets(rng, services, teams)
    asset_service = np.array([a.service for a in assets], dtype=np.int64)
    svc_count = np.bincount(asset_service, minlength=len(services)).astype(np.int64)
    svc_start = (np.cumsum(svc_count) - svc_count).astype(np.int64)
    instances = _build_instances(rng, services, assets, svc_start, svc_count)
    jobs = _build_jobs(rng, services, clock)
    tier_w = {"critical": 5.0, "high": 2.5, "standard": 1.0}
    severe_w = {"critical": 3.0, "high": 1.0, "standard": 0.0}
    team_services: list[list[int]] = [[] for _ in teams]
    for s, svc in enumerate(services):
        team_services[svc.team].append(s)
    return _Org(
        teams=teams, services=services, assets=assets, svc_asset_start=svc_start,
        svc_asset_count=svc_count, asset_service=asset_service, jobs=jobs,
        instances=instances,
        service_pick=_Picker([tier_w[s.tier] for s in services]),
        severe_pick=_Picker([severe_w[s.tier] + 1e-9 for s in services]),
        team_services=team_services,
    )


def _runbook_slug(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("-")
        out.append(ch.lower())
    return "".join(out)


def _runbook_url(rule: _Rule) -> str | None:
    if not rule.runbook:
        return None
    return f"https://runbooks.example.com/alerts/{_runbook_slug(rule.name)}"


def _reference_records(org: _Org, clock: _Clock, seed: int) -> Iterator[Record]:
    for team in org.teams:
        yield {"kind": "team", "id": team.id, "name": team.name}
    for svc in org.services:
        yield {"kind": "service", "id": svc.id, "name": svc.id.replace("-", " ").title(),
               "team": org.teams[svc.team].id, "tier": svc.tier}
    for asset in org.assets:
        rec: Record = {"kind": "asset", "id": asset.id, "hostname": asset.id,
                       "type": asset.type, "service": org.services[asset.service].id,
                       "environment": asset.env}
        if asset.os is not None:
            rec["os"] = asset.os
            rec["os_version"] = asset.os_version
        rec["tags"] = dict(asset.tags)
        yield rec
    for job in org.jobs:
        rec = {"kind": "backup_job", "id": job.id, "service": org.services[job.service].id}
        schedule = job.schedule
        if schedule is not None and job.since is not None:
            rec["schedule"] = schedule
            rec["since"] = clock.iso(job.since)
        rec["critical"] = job.critical
        if job.rpo_hours is not None:
            rec["rpo_hours"] = job.rpo_hours
        yield rec
    yield from _runbooks(org, clock, seed)


def _runbooks(org: _Org, clock: _Clock, seed: int) -> Iterator[Record]:
    rng = _rng(seed, 2)

    def reviewed() -> str:
        if rng.random() < 0.815:
            back = rng.integers(HOUR, 180 * DAY)
        else:
            back = rng.integers(184 * DAY, 560 * DAY)
        return clock.iso(clock.t_end - int(back))

    for rule in _RULES:
        if rule.runbook:
            slug = _runbook_slug(rule.name)
            yield {"kind": "runbook", "id": f"rb-alert-{slug}",
                   "title": f"{rule.name} alert response", "path": f"alerts/{slug}.md",
                   "last_reviewed_at": reviewed()}
    for svc in org.services:
        if rng.random() < 0.85 or svc.tier == "critical":
            yield {"kind": "runbook", "id": f"rb-{svc.id}",
                   "title": f"{svc.id} operations guide", "service": svc.id,
                   "path": f"services/{svc.id}.md", "last_reviewed_at": reviewed()}
    for job in org.jobs:
        if job.critical:
            yield {"kind": "runbook", "id": f"rb-restore-{job.id}",
                   "title": f"Restore {job.id}", "service": org.services[job.service].id,
                   "path": f"restore/{job.id}.md", "last_reviewed_at": reviewed()}


