"""What the root command resolves once and passes to every sub-command."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from sqlalchemy import Engine

from opsledger.core.db import open_database
from opsledger.kpis.policy import Policy, load_policy
from opsledger.kpis.registry import DEFAULT_TARGETS
from opsledger.settings import Settings


@dataclass
class State:
    settings: Settings
    policy_path: Path | None
    _engine: Engine | None = field(default=None, init=False)

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = open_database(self.settings.resolved_database_url())
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def policy(self) -> Policy:
        return load_policy(self.policy_path or self.settings.policy, DEFAULT_TARGETS)


def state(ctx: typer.Context) -> State:
    st = ctx.find_root().obj
    assert isinstance(st, State)
    return st
