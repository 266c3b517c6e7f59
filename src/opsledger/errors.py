"""One error tree for opsledger. No HTTP or CLI knowledge here: each surface maps it once."""

from __future__ import annotations


class OpsledgerError(Exception):
    """Base of every error opsledger raises on purpose."""

    exit_code = 1


class UsageError(OpsledgerError):
    """Bad input from the user: a bad file, record, option or policy. Exit code 2."""

    exit_code = 2


class RecordError(UsageError):
    """A record that breaks the import rules, located by source, line or row, and field."""

    def __init__(self, source: str, location: str, field: str | None, reason: str) -> None:
        self.source = source
        self.location = location
        self.field = field
        self.reason = reason
        where = f"{source}, {location}" if location else source
        what = f"field '{field}': {reason}" if field else reason
        super().__init__(f"{where}: {what}")


class PolicyError(UsageError):
    """An invalid policy file."""


class PeriodError(UsageError):
    """A period that cannot be parsed."""


class NotFoundError(UsageError):
    """A named thing (KPI id, record) that does not exist."""


class DataError(OpsledgerError):
    """Stored data that cannot give an answer (for example mixed currencies)."""

    exit_code = 2
