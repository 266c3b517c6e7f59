"""PostgreSQL: the bodies of inbound and rejected payloads are compressed with lz4; raw-log
chunk bodies (Zstandard already) are not compressed again

Every webhook payload's body is kept (inbound_payloads.body, a few KB of JSON). PostgreSQL
compresses such a value with pglz unless told otherwise, which took about 6 % of the
database server's CPU under webhook load; lz4 compresses several times faster (webhooks of 10
alerts: 6 % more payloads a second, 2-9 % less PostgreSQL CPU a payload, in 3 pairs of runs;
docs/benchmarks.md). A raw_chunks body is
Zstandard output that pglz cannot shrink: it is stored as it is (STORAGE EXTERNAL). Values
stored before keep their compression; PostgreSQL reads both.

Only where the server has lz4 (PostgreSQL 14 and later, built with it, as the PGDG and
Debian packages are); elsewhere, and on SQLite, nothing changes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BODIES = ("inbound_payloads", "rejected_payloads")


def _lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(sa.text(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )).scalar()
    return bool(found)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    if _lz4():
        for table in BODIES:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "body" SET COMPRESSION lz4')
    op.execute('ALTER TABLE "raw_chunks" ALTER COLUMN "body" SET STORAGE EXTERNAL')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    if _lz4():
        for table in BODIES:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "body" SET COMPRESSION DEFAULT')
    op.execute('ALTER TABLE "raw_chunks" ALTER COLUMN "body" SET STORAGE EXTENDED')
