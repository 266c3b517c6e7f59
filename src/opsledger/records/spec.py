"""The native record kinds of spec/records.md, declared once as data.

Validation models (`records.validation`) and tables (`records.tables`) are built from this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FieldType(StrEnum):
    STR = "string"
    INT = "integer"
    FLOAT = "number"
    BOOL = "boolean"
    DATETIME = "timestamp"
    DATE = "date"
    MONTH = "month"
    OBJECT = "object"
    CRON = "cron"


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType = FieldType.STR
    required: bool = False
    choices: tuple[str | int, ...] | None = None
    ref: str | None = None  # kind whose id this field names
    minimum: float | None = None
    maximum: float | None = None
    index: bool = False


@dataclass(frozen=True)
class Kind:
    name: str
    table: str
    fields: tuple[Field, ...]
    # (later, earlier): `later` must not be before `earlier` when both are present
    order: tuple[tuple[str, str], ...] = ()
    has_team: bool = False
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


S, I, F, B, T, D, M, O, C = (  # noqa: E741 - short names for the table below
    FieldType.STR,
    FieldType.INT,
    FieldType.FLOAT,
    FieldType.BOOL,
    FieldType.DATETIME,
    FieldType.DATE,
    FieldType.MONTH,
    FieldType.OBJECT,
    FieldType.CRON,
)


def _id() -> Field:
    return Field("id", S, required=True)


def _service() -> Field:
    return Field("service", S, ref="service", index=True)


def _team() -> Field:
    return Field("team", S, ref="team", index=True)


KINDS: tuple[Kind, ...] = (
    Kind("team", "teams", (_id(), Field("name"))),
    Kind(
        "service",
        "services",
        (_id(), Field("name"), _team(), Field("tier", choices=("critical", "high", "standard"))),
    ),
    Kind(
        "asset",
        "assets",
        (
            _id(),
            Field("hostname"),
            Field("type"),
            _service(),
            Field("environment"),
            Field("os"),
            Field("os_version"),
            Field("tags", O),
        ),
    ),
    Kind(
        "alert",
        "alerts",
        (
            _id(),
            Field("name", required=True, index=True),
            Field("source"),
            _service(),
            Field("severity", choices=("critical", "warning", "info")),
            Field("fired_at", T, required=True, index=True),
            Field("resolved_at", T),
            Field("acknowledged_at", T),
            Field("acknowledged_by"),
            Field("actionable", B),
            # indexed by records/tables.py for the alerts linked to an incident only (a partial
            # index: most alerts have none, and each NULL entry cost every insert a b-tree write)
            Field("incident", ref="incident"),
            Field("runbook_url"),
            Field("labels", O),
            # opsledger's own additions, filled by connectors
            Field("annotations", O),
            Field("generator_url"),
            Field("fingerprint"),  # not indexed: nothing looks alerts up by it (ids carry it)
        ),
        order=(("resolved_at", "fired_at"), ("acknowledged_at", "fired_at")),
    ),
    Kind(
        "incident",
        "incidents",
        (
            _id(),
            Field("title"),
            Field("severity", I, required=True, choices=(1, 2, 3)),
            _service(),
            Field("started_at", T, required=True, index=True),
            Field("detected_at", T),
            Field("acknowledged_at", T, index=True),
            Field("mitigated_at", T),
            Field("resolved_at", T),
            Field("root_cause"),
            Field("root_cause_key", index=True),
            Field("caused_by_change", ref="change", index=True),
            # opsledger's own addition: who acknowledged (`opsledger incidents ack --by`)
            Field("acknowledged_by"),
        ),
        order=(
            ("detected_at", "started_at"),
            ("acknowledged_at", "started_at"),
            ("mitigated_at", "started_at"),
            ("resolved_at", "started_at"),
            ("resolved_at", "mitigated_at"),
        ),
    ),
    Kind(
        "change",
        "changes",
        (
            _id(),
            Field("title"),
            _service(),
            Field("type", choices=("standard", "normal", "emergency")),
            Field("risk", choices=("low", "medium", "high")),
            Field("requested_at", T),
            Field("approved_at", T),
            Field("started_at", T),
            Field("deployed_at", T, index=True),
            Field("outcome", choices=("success", "failed", "rolled_back")),
            Field("rollback_plan"),
            Field("ticket"),
        ),
    ),
    Kind(
        "vulnerability",
        "vulnerabilities",
        (
            _id(),
            Field("asset", required=True, ref="asset", index=True),
            Field("cve"),
            Field("package"),
            Field("severity", required=True, choices=("critical", "high", "medium", "low")),
            Field("first_seen", T, required=True, index=True),
            Field("fixed_at", T),
            Field("accepted_until", T),
        ),
    ),
    Kind(
        "backup_job",
        "backup_jobs",
        (
            _id(),
            _service(),
            Field("schedule", C),
            Field("since", T),
            Field("critical", B),
            Field("rpo_hours", F, minimum=0),
        ),
    ),
    Kind(
        "backup_run",
        "backup_runs",
        (
            _id(),
            Field("job", required=True, ref="backup_job", index=True),
            Field("scheduled_at", T),
            Field("started_at", T, required=True, index=True),
            Field("finished_at", T),
            Field("status", required=True, choices=("success", "failed")),
            Field("bytes", I, minimum=0),
        ),
        order=(("finished_at", "started_at"),),
    ),
    Kind(
        "restore_test",
        "restore_tests",
        (
            _id(),
            Field("job", required=True, ref="backup_job", index=True),
            Field("started_at", T, required=True, index=True),
            Field("finished_at", T),
            Field("passed", B, required=True),
            Field("rto_minutes", F, minimum=0),
        ),
        order=(("finished_at", "started_at"),),
    ),
    Kind(
        "capacity_forecast",
        "capacity_forecasts",
        (
            _id(),
            Field("resource", required=True),
            _service(),
            Field("made_at", T, required=True),
            Field("target_date", D, required=True, index=True),
            Field("forecast", F, required=True),
            Field("actual", F),
        ),
    ),
    Kind(
        "budget",
        "budgets",
        (
            _id(),
            Field("scope", required=True, index=True),
            Field("month", M, required=True, index=True),
            Field("amount", F, required=True),
            Field("currency"),
        ),
    ),
    Kind(
        "cost",
        "costs",
        (
            _id(),
            Field("scope", required=True, index=True),
            Field("month", M, required=True, index=True),
            Field("amount", F, required=True),
            Field("currency"),
        ),
    ),
    Kind(
        "provisioning",
        "provisionings",
        (
            _id(),
            Field("what"),
            Field("requested_at", T, required=True),
            Field("completed_at", T, index=True),
            Field("automated", B),
        ),
        order=(("completed_at", "requested_at"),),
    ),
    Kind(
        "task_run",
        "task_runs",
        (
            _id(),
            Field("task", required=True),
            _team(),
            Field("performed_at", T, required=True, index=True),
            Field("automated", B, required=True),
            Field("minutes", F, required=True, minimum=0),
        ),
        has_team=True,
    ),
    Kind(
        "runbook",
        "runbooks",
        (
            _id(),
            Field("title"),
            _service(),
            Field("path"),
            Field("last_reviewed_at", T, required=True),
        ),
    ),
    Kind(
        "action_item",
        "action_items",
        (
            _id(),
            Field("incident", required=True, ref="incident", index=True),
            Field("title"),
            Field("owner"),
            Field("due", D, index=True),
            Field("completed_at", T),
        ),
    ),
    Kind(
        "chat_message",
        "chat_messages",
        (
            _id(),
            Field("channel", index=True),
            Field("user"),
            Field("text"),
            Field("posted_at", T, required=True, index=True),
            Field("thread"),  # id of the chat_message that starts the thread
        ),
    ),
    Kind(
        "work_item",
        "work_items",
        (
            _id(),
            _team(),
            Field("title"),
            Field("committed_at", T),
            Field("due", D, required=True, index=True),
            Field("completed_at", T),
        ),
        has_team=True,
    ),
    Kind(
        "survey_response",
        "survey_responses",
        (
            _id(),
            _team(),
            Field("submitted_at", T, required=True, index=True),
            Field("score", F, required=True, minimum=1, maximum=5),
        ),
        has_team=True,
    ),
)

KIND_BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
KIND_BY_TABLE: dict[str, Kind] = {k.table: k for k in KINDS}


def kind_for_name(name: str) -> Kind | None:
    """A kind from its name, singular or plural (`incident`, `incidents`)."""
    return KIND_BY_NAME.get(name) or KIND_BY_TABLE.get(name)
