"""the index of alerts by incident holds only the alerts linked to one

Most alerts are linked to no incident; a full index held a NULL entry for each of them, and
every alert insert paid a b-tree write for it. The queries (`incident = :id`) imply the
partial index's condition on SQLite and PostgreSQL alike.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINKED = sa.text("incident IS NOT NULL")


def upgrade() -> None:
    op.drop_index('ix_alerts_incident', table_name='alerts')
    op.create_index('ix_alerts_incident', 'alerts', ['incident'], unique=False,
                    sqlite_where=LINKED, postgresql_where=LINKED)


def downgrade() -> None:
    op.drop_index('ix_alerts_incident', table_name='alerts')
    op.create_index('ix_alerts_incident', 'alerts', ['incident'], unique=False)
