"""The demo's catalogues: alert rules, service and asset families, the tunables of the year."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from opsledger.demo.common import MINUTE

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


