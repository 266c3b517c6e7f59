"""Settings: one object, env prefix OPSLEDGER_, built once by the surface and passed down."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    data_dir = Path(platformdirs.user_data_dir("opsledger", appauthor=False))
    return f"sqlite:///{data_dir / 'opsledger.db'}"


class Settings(BaseSettings):
    """Runtime settings. `database_url` comes from `--db` or OPSLEDGER_DATABASE_URL."""

    model_config = SettingsConfigDict(env_prefix="OPSLEDGER_", extra="ignore")

    database_url: str = ""
    policy: Path | None = None

    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url()
