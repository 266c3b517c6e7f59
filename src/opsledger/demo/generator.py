"""Deterministic demo data: twelve months of a mid-size organisation's operations.

``generate(seed, scale, end)`` streams native records (see ``records.md``) as JSON-ready
dicts: reference kinds first (teams, services, assets, backup jobs, runbooks), then the
events of the twelve months ``[end - 12 months, end)`` day by day. Nothing but the seed,
the scale and ``end`` influences the output; the clock is read only for the default
``end`` (the first day of the current UTC month).

Volumes at scale 1 (~155,000 records): 8 teams, 120 services, ~620 assets, ~100,000
alerts, ~27,000 backup runs, ~10,000 task runs, ~8,000 vulnerability findings, ~3,300
changes, ~260 incidents. Everything but the teams grows linearly with ``scale`` (teams
with its square root). Alerts are drawn with numpy one day at a time and every record is
yielded as soon as it is made, so memory stays small (~70 MB resident at scale 10).

The parameters are tuned so that, for the last full month, some KPIs of ``kpis.md`` meet
their default targets and some miss: alert noise (~40 % non-actionable) and critical
patch compliance miss, backup success lands just below 99 % with a few silent failures,
change failure rate sits around 5 %, documentation freshness near 80 %, and restore tests,
Sev-1 MTTR, recurrence and satisfaction meet or miss by chance.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

Record = dict[str, object]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MINUTE: Final = 60
HOUR: Final = 3_600
DAY: Final = 86_400

ALERTS_PER_YEAR: Final = 105_000  # at scale 1; aimed a little high so scale 10 > 1e6
SERVICES: Final = 120
TEAMS: Final = 8

REFERENCE_KINDS: Final = ("team", "service", "asset", "backup_job", "runbook")

_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()

# --------------------------------------------------------------------------- catalogues

_TEAM_NAMES: Final = (
    ("platform", "Platform Engineering"),
    ("core-infra", "Core Infrastructure"),
    ("data", "Data Platform"),
    ("payments", "Payments Engineering"),
    ("identity", "Identity & Access"),
    ("observability", "Observability"),
    ("network", "Network & Edge"),
    ("devex", "Developer Experience"),
    ("storage", "Storage & Databases"),
    ("secops", "Security Operations"),
    ("commerce", "Commerce"),
    ("growth", "Growth"),
    ("mobile", "Mobile Backend"),
    ("search", "Search & Discovery"),
    ("messaging", "Messaging"),
    ("logistics", "Logistics"),
    ("finance-it", "Finance IT"),
    ("corp-it", "Corporate IT"),
    ("ml", "ML Platform"),
    ("analytics", "Analytics"),
    ("billing", "Billing"),
    ("cx", "Customer Experience"),
    ("partners", "Partner Integrations"),
    ("media", "Media"),
    ("risk", "Risk & Fraud"),
    ("compliance", "Compliance Engineering"),
    ("edge", "Edge Compute"),
    ("release", "Release Engineering"),
    ("sre", "Site Reliability"),
    ("dba", "Database Reliability"),
)

_FIRST_NAMES: Final = (
    "alex", "sam", "maria", "jan", "li", "noah", "emma", "omar", "priya", "lukas", "sofia",
    "david", "yuki", "anna", "mateo", "chloe", "ivan", "fatima", "tom", "lena", "ravi",
    "nina", "pedro", "hana", "oliver", "amara", "felix", "julia", "kwame", "sara",
)
_SURNAMES: Final = (
    "smith", "garcia", "kowalski", "nguyen", "mueller", "rossi", "tanaka", "okafor",
    "johansson", "dubois", "silva", "khan", "novak", "murphy", "schmidt", "kim", "patel",
    "lopez", "jensen", "ivanova", "costa", "haddad", "brown", "moreau", "fischer", "sato",
    "walker", "popescu", "mensah", "larsen",
)

_DOMAINS: Final = (
    "payments", "checkout", "billing", "ledger", "identity", "auth", "accounts", "catalog",
    "inventory", "orders", "shipping", "pricing", "search", "recommendations",
    "notifications", "email", "sms", "reporting", "analytics", "warehouse", "crm",
    "support", "payroll", "fleet", "maps", "media", "uploads", "profiles", "messaging",
    "audit", "fraud", "risk", "loyalty", "promotions", "cart", "partner", "vendor",
    "invoicing", "tax", "compliance", "metrics", "logging", "tracing", "ci", "artifacts",
    "registry", "dns", "vpn", "ldap", "sso", "wiki", "chat", "calendar", "booking",
    "returns", "subscriptions",
)
# component suffix -> service kind
_COMPONENTS: Final = (
    ("api", "api"), ("web", "web"), ("gateway", "gateway"), ("worker", "worker"),
    ("consumer", "worker"), ("scheduler", "batch"), ("etl", "batch"), ("db", "database"),
    ("postgres", "database"), ("mysql", "database"), ("redis", "cache"), ("cache", "cache"),
    ("kafka", "queue"), ("queue", "queue"), ("search", "storage"), ("store", "storage"),
    ("frontend", "web"), ("admin", "web"), ("grpc", "api"), ("sync", "worker"),
    ("exporter", "batch"), ("proxy", "gateway"),
)
_STATEFUL_KINDS: Final = frozenset({"database", "cache", "queue", "storage"})

_REGIONS: Final = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2")
_LINUX: Final = (
    ("ubuntu", "22.04", 0.34), ("ubuntu", "24.04", 0.24), ("rhel", "8.10", 0.14),
    ("rhel", "9.4", 0.14), ("debian", "12", 0.08), ("amazonlinux", "2023", 0.03),
    ("windows", "server-2022", 0.03),
)
_CONTAINER_OS: Final = (
    ("alpine", "3.19", 0.22), ("alpine", "3.20", 0.25), ("debian", "12", 0.25),
    ("ubuntu", "24.04", 0.13), ("distroless", "debian12", 0.15),
)
_ENGINE_VERSIONS: Final = {
    "postgresql": ("14.12", "15.7", "16.3", "16.4"),
    "mysql": ("8.0.36", "8.0.39", "8.4.1"),
}


@dataclass(frozen=True)
class _Rule:
    name: str
    family: str  # node, kube, db-postgresql, db-mysql, db-rds, cache, app, blackbox, elb
    severity: str
    source: str = "alertmanager"
    noisy: float = 0.03  # probability that an instance of the rule is never acknowledged
    flappy: float = 0.02  # probability that an instance flaps
    runbook: bool = True
    port: str = ":9100"
    job: str = "node"
    storm: bool = False


_RULES: Final = (
    _Rule("HighCPUUsage", "node", "warning", noisy=0.25),
    _Rule("HostOutOfMemory", "node", "warning"),
    _Rule("DiskWillFillIn4Hours", "node", "critical"),
    _Rule("HostOutOfDiskSpace", "node", "warning"),
    _Rule("HostOutOfInodes", "node", "warning"),
    _Rule("HostOomKillDetected", "node", "warning"),
    _Rule("HostSystemdServiceCrashed", "node", "warning", flappy=0.08),
    _Rule("NodeClockSkewDetected", "node", "warning", noisy=0.5, runbook=False),
    _Rule("HostCpuStealNoisyNeighbor", "node", "info", noisy=0.6, runbook=False),
    _Rule("HostNetworkReceiveErrors", "node", "warning", flappy=0.15, storm=True),
    _Rule("HostUnusualDiskWriteLatency", "node", "info", noisy=0.5, runbook=False),
    _Rule("HostSwapIsFillingUp", "node", "warning", noisy=0.15),
    _Rule("NodeFilesystemAlmostOutOfFiles", "node", "warning"),
    _Rule("KubePodCrashLooping", "kube", "warning", flappy=0.15, port=":8080",
          job="kube-state-metrics", storm=True),
    _Rule("KubePodNotReady", "kube", "warning", flappy=0.15, port=":8080",
          job="kube-state-metrics"),
    _Rule("KubeDeploymentReplicasMismatch", "kube", "warning", port=":8080",
          job="kube-state-metrics"),
    _Rule("KubeContainerWaiting", "kube", "warning", noisy=0.1, port=":8080",
          job="kube-state-metrics"),
    _Rule("KubeHpaMaxedOut", "kube", "info", noisy=0.5, port=":8080",
          job="kube-state-metrics", runbook=False),
    _Rule("CPUThrottlingHigh", "kube", "info", noisy=0.6, port=":8080", job="cadvisor",
          runbook=False),
    _Rule("KubeJobFailed", "kube", "warning", port=":8080", job="kube-state-metrics"),
    _Rule("KubePersistentVolumeFillingUp", "kube", "critical", port=":8080",
          job="kubelet"),
    _Rule("KubeContainerOOMKilled", "kube", "warning", port=":8080", job="cadvisor"),
    _Rule("KubeNodeNotReady", "kube", "warning", port=":10250", job="kubelet",
          storm=True),
    _Rule("PostgresqlDown", "db-postgresql", "critical", port=":9187", job="postgres"),
    _Rule("PostgresqlReplicationLag", "db-postgresql", "warning", flappy=0.2,
          port=":9187", job="postgres"),
    _Rule("PostgresqlTooManyConnections", "db-postgresql", "warning", port=":9187",
          job="postgres"),
    _Rule("PostgresqlDeadLocks", "db-postgresql", "info", noisy=0.5, port=":9187",
          job="postgres", runbook=False),
    _Rule("MysqlDown", "db-mysql", "critical", port=":9104", job="mysql"),
    _Rule("MysqlSlowQueries", "db-mysql", "warning", noisy=0.4, port=":9104",
          job="mysql"),
    _Rule("MysqlSlaveReplicationLag", "db-mysql", "warning", flappy=0.2, port=":9104",
          job="mysql"),
    _Rule("RDSFreeStorageSpaceLow", "db-rds", "critical", source="cloudwatch", port="",
          job="cloudwatch"),
    _Rule("RDSCPUUtilizationHigh", "db-rds", "warning", source="cloudwatch", noisy=0.4,
          port="", job="cloudwatch", runbook=False),
    _Rule("RedisOutOfConfiguredMaxmemory", "cache", "warning", port=":9121", job="redis"),
    _Rule("RedisRejectedConnections", "cache", "warning", flappy=0.2, port=":9121",
          job="redis"),
    _Rule("RedisDown", "cache", "critical", port=":9121", job="redis"),
    _Rule("KafkaConsumerGroupLag", "queue", "warning", noisy=0.35, flappy=0.2,
          port=":9308", job="kafka"),
    _Rule("KafkaUnderReplicatedPartitions", "queue", "warning", port=":9308", job="kafka"),
    _Rule("RabbitmqTooManyReadyMessages", "queue", "warning", noisy=0.2, port=":15692",
          job="rabbitmq"),
    _Rule("HighErrorRate", "app", "critical", port=":8080", job="app"),
    _Rule("HighLatencyP99", "app", "warning", noisy=0.1, flappy=0.2, port=":8080",
          job="app"),
    _Rule("SLOErrorBudgetBurn", "app", "critical", port=":8080", job="slo"),
    _Rule("TargetDown", "app", "critical", flappy=0.1, port=":8080", job="app",
          storm=True),
    _Rule("EndpointSlowResponse", "app", "info", noisy=0.6, port=":8080", job="app",
          runbook=False),
    _Rule("NginxHighHttp5xxErrorRate", "app", "warning", port=":9113", job="nginx"),
    _Rule("BlackboxProbeFailed", "blackbox", "critical", flappy=0.15, port="",
          job="blackbox", storm=True),
    _Rule("SSLCertificateExpiringSoon", "blackbox", "warning", port="", job="blackbox"),
    _Rule("BlackboxSlowProbe", "blackbox", "info", noisy=0.5, port="", job="blackbox",
          runbook=False),
    _Rule("ELB5XXErrorsHigh", "elb", "warning", source="cloudwatch", port="",
          job="cloudwatch"),
)
_RULE_INDEX: Final = {rule.name: i for i, rule in enumerate(_RULES)}
_STORM_RULES: Final = tuple(i for i, rule in enumerate(_RULES) if rule.storm)
_SEVERITY_WEIGHT: Final = {"critical": 0.45, "warning": 1.0, "info": 1.2}
_ACK_P: Final = {"critical": 0.95, "warning": 0.86, "info": 0.55}
_NOISY_SHARE: Final = 0.12  # of all alerts: rules that are never acknowledged
_FLAP_SHARE: Final = 0.08  # of all alerts: flapping rules
_ACK_MEDIAN_S: Final = {"critical": 4 * MINUTE, "warning": 11 * MINUTE, "info": 35 * MINUTE}
_DURATION_MEDIAN_S: Final = {"critical": 25 * MINUTE, "warning": 45 * MINUTE,
                             "info": 90 * MINUTE}

# diurnal shape of alert firing times (UTC hour -> relative weight)
_DIURNAL: Final = np.array(
    [0.55, 0.5, 0.5, 0.5, 0.55, 0.65, 0.8, 1.0, 1.25, 1.4, 1.45, 1.45, 1.4, 1.4, 1.45,
     1.45, 1.4, 1.3, 1.15, 1.0, 0.9, 0.8, 0.7, 0.6]
)
_DIURNAL_P: Final = _DIURNAL / _DIURNAL.sum()

# incidents: (per year at scale 1, storm probability, alerts linked (low, high))
_INCIDENT_RATE: Final = {1: 12.0, 2: 60.0, 3: 180.0}
_INCIDENT_STORM_P: Final = {1: 0.5, 2: 0.12, 3: 0.0}
_INCIDENT_ALERTS: Final = {1: (6, 25), 2: (3, 10), 3: (1, 4)}
_INDEPENDENT_STORMS_PER_YEAR: Final = 9.0
_STORM_SIZE: Final = (150, 700)

# (key, title template, root cause text, change-related)
_CAUSES: Final = (
    ("cert-expiry", "TLS certificate expired on {svc} ingress",
     "A TLS certificate was not renewed before expiry", False),
    ("conn-pool-exhaustion", "Elevated 5xx on {svc}: connection pool exhausted",
     "Database connection pool exhausted under peak load", False),
    ("memory-leak", "{svc} pods restarting with OOM kills",
     "Memory leak in a long-running worker process", False),
    ("disk-full", "{svc} unavailable: disk full",
     "Log volume filled the data disk", False),
    ("dns-resolution", "Intermittent DNS failures for {svc}",
     "Resolver overload caused intermittent lookup failures", False),
    ("upstream-provider", "Degraded {svc}: upstream provider outage",
     "Third-party provider outage", False),
    ("replication-lag", "Stale reads on {svc}: replica lag",
     "Replication lag after a long-running transaction", False),
    ("capacity-saturation", "Latency spike on {svc} at peak",
     "Insufficient capacity headroom at peak traffic", False),
    ("expired-credentials", "{svc} failing to authenticate to dependencies",
     "Service credentials expired without rotation", False),
    ("network-partition", "Packet loss between zones affecting {svc}",
     "Top-of-rack switch failure", False),
    ("bad-config-push", "{svc} errors after configuration change",
     "Faulty configuration pushed to production", True),
    ("faulty-deploy", "Regression in {svc} after deploy",
     "Code regression shipped without canary", True),
    ("schema-migration", "{svc} locked tables during migration",
     "Blocking schema migration", True),
    ("dependency-upgrade", "{svc} broken by library upgrade",
     "Incompatible dependency upgrade", True),
)
_CAUSE_WEIGHTS: Final = (6, 8, 7, 6, 4, 5, 4, 7, 4, 3, 8, 9, 3, 3)
_CHANGE_CAUSES: Final = tuple(i for i, c in enumerate(_CAUSES) if c[3])
_OTHER_CAUSES: Final = tuple(i for i, c in enumerate(_CAUSES) if not c[3])

_CHANGE_TITLES: Final = (
    "Upgrade {svc} to a new minor version", "Rotate TLS certificates for {svc}",
    "Scale {svc} node pool", "Apply kernel patches to {svc} hosts",
    "Increase connection pool size on {svc}", "Migrate {svc} to the new load balancer",
    "Update firewall rules for {svc}", "Resize {svc} database instance",
    "Enable autoscaling for {svc}", "Change log retention for {svc}",
    "Roll out new base image to {svc}", "Update Terraform module for {svc}",
)
_ROLLBACK_PLANS: Final = (
    "Revert the Terraform commit and re-apply",
    "helm rollback to the previous release",
    "Restore the previous configuration from git and reload",
    "Fail back to the standby and restore the snapshot",
    "Redeploy the previous image tag",
)
_ACTION_TITLES: Final = (
    "Add alert for {cause} on {svc}", "Write runbook section for {cause}",
    "Automate remediation of {cause}", "Add canary stage to {svc} deploy pipeline",
    "Add capacity headroom to {svc}", "Add integration test covering {cause}",
    "Review on-call escalation for {svc}", "Add dashboard panel for {cause}",
)
_WORK_TITLES: Final = (
    "Migrate {svc} to Terraform modules", "Upgrade {svc} to Kubernetes 1.30",
    "Enable backups encryption for {svc}", "Set up SLO dashboards for {svc}",
    "Decommission legacy hosts of {svc}", "Automate certificate rotation for {svc}",
    "Onboard {svc} to centralised logging", "Right-size {svc} instances",
    "Add read replica for {svc}", "Harden SSH configuration on {svc} hosts",
)
# task -> (manual minutes median, runs per team-week)
_TASKS: Final = (
    ("rotate-tls-certificate", 45.0, 1.5), ("restart-stuck-worker", 20.0, 5.0),
    ("clean-up-disk-space", 25.0, 4.0), ("grant-access-request", 15.0, 6.0),
    ("renew-dns-records", 30.0, 0.8), ("scale-node-pool", 20.0, 2.0),
    ("patch-hosts", 90.0, 1.5), ("rotate-database-credentials", 40.0, 0.8),
    ("rebuild-search-index", 60.0, 0.8), ("provision-test-environment", 120.0, 1.5),
    ("update-firewall-rules", 30.0, 2.0), ("log-retention-cleanup", 20.0, 1.5),
    ("manual-deploy", 35.0, 4.0), ("purge-cdn-cache", 10.0, 3.0),
    ("resize-volume", 25.0, 1.5), ("restart-kafka-broker", 40.0, 0.8),
    ("verify-backup-integrity", 30.0, 1.5), ("reissue-vpn-certificates", 20.0, 1.0),
)
# provisioning kind -> (share, automated median minutes)
_PROVISIONING: Final = (
    ("host", 0.3, 18.0), ("vm", 0.25, 9.0), ("environment", 0.1, 35.0),
    ("database", 0.1, 24.0), ("namespace", 0.15, 3.0), ("bucket", 0.05, 2.0),
    ("load-balancer", 0.05, 12.0),
)
# package -> (asset filter, severity weights critical/high/medium/low)
_PACKAGES: Final = (
    ("openssl", "linux", (0.15, 0.35, 0.35, 0.15)),
    ("glibc", "linux", (0.1, 0.35, 0.35, 0.2)),
    ("linux-kernel", "os", (0.1, 0.4, 0.35, 0.15)),
    ("openssh-server", "os", (0.15, 0.35, 0.3, 0.2)),
    ("curl", "linux", (0.05, 0.25, 0.45, 0.25)),
    ("sudo", "os", (0.1, 0.4, 0.3, 0.2)),
    ("systemd", "os", (0.02, 0.2, 0.5, 0.28)),
    ("zlib", "linux", (0.05, 0.2, 0.45, 0.3)),
    ("libxml2", "container", (0.05, 0.3, 0.45, 0.2)),
    ("busybox", "alpine", (0.02, 0.2, 0.5, 0.28)),
    ("musl", "alpine", (0.02, 0.18, 0.5, 0.3)),
    ("python3.11", "container", (0.05, 0.3, 0.45, 0.2)),
    ("nodejs", "container", (0.08, 0.32, 0.4, 0.2)),
    ("jackson-databind", "container", (0.1, 0.4, 0.35, 0.15)),
    ("golang-stdlib", "container", (0.05, 0.35, 0.45, 0.15)),
    ("postgresql", "database", (0.1, 0.35, 0.4, 0.15)),
    ("windows-cumulative-update", "windows", (0.25, 0.45, 0.2, 0.1)),
)
_SEVERITIES: Final = ("critical", "high", "medium", "low")
_SLA_DAYS: Final = (14, 30, 90, 180)
# probability a finding is fixed within its SLA, per severity
_ON_TIME_P: Final = (0.925, 0.935, 0.95, 0.955)
_NEVER_FIXED_P: Final = 0.012
_RISK_ACCEPTED_P: Final = 0.01

_BACKUP_TOOLS: Final = {
    "database": ("pg-dump", "wal-archive", "volume-snapshot"),
    "cache": ("redis-rdb",),
    "queue": ("volume-snapshot",),
    "storage": ("restic-files", "volume-snapshot"),
    "other": ("restic-files", "s3-sync", "config-export"),
}
_BACKUP_SLOT_MINUTES: Final = (0, 0, 0, 15, 30, 30, 45)
_BACKUP_MISSED_P: Final = 0.0035  # silent failures: no run at all
_BACKUP_FAILED_P: Final = 0.0095
_RESTORE_PASS_P: Final = 0.975

_CAPACITY_RESOURCES: Final = (("storage_gib", 800.0), ("cpu_cores", 24.0),
                               ("memory_gib", 96.0))
_SURVEY_SCORE_P: Final = (0.02, 0.04, 0.1, 0.39, 0.45)


# --------------------------------------------------------------------------- helpers


def default_end(today: dt.date | None = None) -> dt.date:
    """The first day of the current UTC month (or of ``today``'s month)."""
    if today is None:
        today = dt.datetime.now(dt.UTC).date()
    return today.replace(day=1)


def window(end: dt.date) -> tuple[dt.date, dt.date]:
    """The twelve months ``[start, end)`` that the events of a run fall in."""
    start_year = end.year - 1
    last_day = (dt.date(start_year + (end.month == 12), end.month % 12 + 1, 1)
                - dt.timedelta(days=1)).day
    return end.replace(year=start_year, day=min(end.day, last_day)), end


def _epoch(day: dt.date) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY


@functools.cache
def _time_of_day() -> tuple[str, ...]:
    return tuple(
        f"T{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)
    )


class _Clock:
    """Epoch seconds (UTC) to RFC 3339 / date strings, with a per-day cache."""

    def __init__(self, start: dt.date, end: dt.date) -> None:
        self.start = start
        self.end = end
        self.t0 = _epoch(start)
        self.t_end = _epoch(end)
        self.n_days = (end - start).days
        self._tod = _time_of_day()
        self._days: dict[int, str] = {}

    def day_str(self, day_number: int) -> str:
        text = self._days.get(day_number)
        if text is None:
            text = dt.date.fromordinal(_EPOCH_ORDINAL + day_number).isoformat()
            self._days[day_number] = text
        return text

    def iso(self, t: int) -> str:
        d, s = divmod(t, DAY)
        return self.day_str(d) + self._tod[s]

    def date(self, t: int) -> str:
        return self.day_str(t // DAY)

    def day_start(self, d: int) -> int:
        return self.t0 + d * DAY

    def weekday(self, d: int) -> int:
        """Monday 0 .. Sunday 6 of window day ``d``."""
        return (self.start.weekday() + d) % 7

    def calendar(self, d: int) -> dt.date:
        return self.start + dt.timedelta(days=d)

    def day_of(self, t: int) -> int:
        return (t - self.t0) // DAY


class _Picker:
    """Weighted choice by inverse CDF (much cheaper than ``rng.choice(p=...)``)."""

    def __init__(self, weights: Sequence[float]) -> None:
        total = float(sum(weights))
        acc = 0.0
        self.cum: list[float] = []
        for w in weights:
            acc += w / total
            self.cum.append(acc)
        self.cum[-1] = 1.0

    def __call__(self, rng: np.random.Generator) -> int:
        return bisect.bisect_right(self.cum, rng.random())


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed % 2**63, stream])


def _lognormal(rng: np.random.Generator, median: float, sigma: float) -> float:
    return float(median * math.exp(sigma * rng.standard_normal()))


def _busday(day: dt.date, offset: int) -> dt.date:
    out: np.datetime64 = np.busday_offset(np.datetime64(day, "D"), offset, roll="forward")
    return dt.date.fromisoformat(str(out))


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
            u = rng.random()
            if u < 0.86:
                done = started + int(rng.integers(HOUR, due_end - started))
            elif u < 0.96:
                done = due_end + int(rng.integers(HOUR, 25 * DAY))
            else:
                done = clock.t_end
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
                u = rng.random()
                if u < 0.87:
                    done = committed + int(rng.integers(HOUR, due_end - committed))
                elif u < 0.96:
                    done = due_end + int(rng.integers(HOUR, 20 * DAY))
                else:
                    done = clock.t_end
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


# --------------------------------------------------------------------------- entry point


def generate(seed: int = 42, scale: float = 1.0,
             end: dt.date | None = None) -> Iterator[dict[str, object]]:
    """Stream the demo organisation's records: references first, then 12 months of events.

    ``end`` (exclusive) defaults to the first day of the current UTC month; the events
    fall in ``[end - 12 months, end)``. Same seed, scale and end give identical output.
    """
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"scale must be a positive number, not {scale!r}")
    if isinstance(end, dt.datetime):
        end = end.date()
    if end is None:
        end = default_end()
    start, end = window(end)
    clock = _Clock(start, end)
    org = _build_org(seed, scale, clock)
    yield from _reference_records(org, clock, seed)
    yield from _Year(org, clock, seed, scale).events()
