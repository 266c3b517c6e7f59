"""raw log in compressed chunks; records point at their raw line; replaced versions

Also drops the index on alerts.fingerprint, which no query uses.

The per-record raw event rows (raw_events) become chunks of lines (raw_chunks, Zstandard); every
record row gets the pointer of its current version's line (_raw, _line), and the versions that
later imports replaced are kept in record_versions. No input is lost: every raw event line is
moved into a chunk, in the same order.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-29
"""
import json
import zstandard
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 5000
RECORD_TABLES = {
    'team': 'teams', 'service': 'services', 'asset': 'assets', 'alert': 'alerts',
    'incident': 'incidents', 'change': 'changes', 'vulnerability': 'vulnerabilities',
    'backup_job': 'backup_jobs', 'backup_run': 'backup_runs', 'restore_test': 'restore_tests',
    'capacity_forecast': 'capacity_forecasts', 'budget': 'budgets', 'cost': 'costs',
    'provisioning': 'provisionings', 'task_run': 'task_runs', 'runbook': 'runbooks',
    'action_item': 'action_items', 'work_item': 'work_items',
    'survey_response': 'survey_responses', 'chat_message': 'chat_messages',
}

raw_events = sa.table(
    'raw_events', sa.column('seq', sa.BigInteger), sa.column('import_id', sa.Integer),
    sa.column('kind', sa.String), sa.column('record_id', sa.Text),
    sa.column('format', sa.String), sa.column('lenient', sa.Boolean),
    sa.column('payload', sa.Text), sa.column('digest', sa.String),
    sa.column('inbound_id', sa.BigInteger),
)
raw_map = sa.table('_raw_map', sa.column('seq', sa.BigInteger), sa.column('chunk', sa.BigInteger),
                   sa.column('line', sa.Integer))


def _tables() -> dict[str, str]:
    """The record tables this database has (chat_messages came with 0003)."""
    have = set(sa.inspect(op.get_bind()).get_table_names())
    return {k: t for k, t in RECORD_TABLES.items() if t in have}


def upgrade() -> None:
    op.create_table(
        'raw_chunks',
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('import_id', sa.Integer(), nullable=False),
        sa.Column('format', sa.String(length=10), nullable=False),
        sa.Column('lenient', sa.Boolean(), nullable=False),
        sa.Column('lines', sa.Integer(), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('inbound_id', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_raw_chunks')),
    )
    op.create_index(op.f('ix_raw_chunks_import_id'), 'raw_chunks', ['import_id'], unique=False)
    op.create_table(
        'record_versions',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('record_id', sa.Text(), nullable=False),
        sa.Column('import_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=32), nullable=False),
        sa.Column('raw', sa.BigInteger(), nullable=False),
        sa.Column('line', sa.Integer(), nullable=False),
        sa.Column('replaced_by', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_record_versions')),
    )
    op.create_index('ix_record_versions_kind_record', 'record_versions', ['kind', 'record_id'],
                    unique=False)
    tables = _tables()
    for table in tables.values():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('_raw', sa.BigInteger(), nullable=False,
                                          server_default='0'))
            batch_op.add_column(sa.Column('_line', sa.Integer(), nullable=False,
                                          server_default='0'))
    op.create_table('_raw_map', sa.Column('seq', sa.BigInteger(), primary_key=True),
                    sa.Column('chunk', sa.BigInteger(), nullable=False),
                    sa.Column('line', sa.Integer(), nullable=False))
    _move_events()
    for kind, table in tables.items():
        pick = (
            "SELECT m.{col} FROM raw_events r JOIN _raw_map m ON m.seq = r.seq "
            f"WHERE r.kind = '{kind}' AND r.record_id = {table}.id "
            f"AND r.import_id = {table}._import ORDER BY r.seq DESC LIMIT 1"
        )
        op.execute(
            f"UPDATE {table} SET _raw = COALESCE(({pick.format(col='chunk')}), 0), "
            f"_line = COALESCE(({pick.format(col='line')}), 0)"
        )
    op.execute(
        "INSERT INTO record_versions (kind, record_id, import_id, digest, raw, line, replaced_by) "
        "SELECT kind, record_id, import_id, digest, chunk, line, nxt FROM ("
        " SELECT r.kind, r.record_id, r.import_id, r.digest, m.chunk, m.line,"
        "  LEAD(r.import_id) OVER (PARTITION BY r.kind, r.record_id ORDER BY r.seq) AS nxt,"
        "  r.seq AS seq"
        " FROM raw_events r JOIN _raw_map m ON m.seq = r.seq) v "
        "WHERE nxt IS NOT NULL ORDER BY seq"
    )
    op.drop_table('_raw_map')
    # an index that no query uses and every imported alert paid for
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_fingerprint')
    op.drop_index('ix_raw_events_kind_record', table_name='raw_events')
    op.drop_index(op.f('ix_raw_events_import_id'), table_name='raw_events')
    op.drop_table('raw_events')


def _move_events() -> None:
    """Every raw event, in order, into chunks of consecutive events of one import and form."""
    conn = op.get_bind()
    chunks = sa.table('raw_chunks', sa.column('seq', sa.BigInteger),
                      sa.column('import_id', sa.Integer), sa.column('format', sa.String),
                      sa.column('lenient', sa.Boolean), sa.column('lines', sa.Integer),
                      sa.column('body', sa.LargeBinary), sa.column('inbound_id', sa.BigInteger))
    group: tuple[object, ...] | None = None
    seqs: list[int] = []
    lines: list[str] = []

    def flush() -> None:
        if not lines:
            return
        assert group is not None
        import_id, fmt, lenient, inbound_id = group
        body = zstandard.ZstdCompressor(level=1).compress("\n".join(lines).encode("utf-8"))
        chunk = conn.execute(
            sa.insert(chunks).values(import_id=import_id, format=fmt, lenient=lenient,
                                     lines=len(lines), body=body, inbound_id=inbound_id)
            .returning(chunks.c.seq)
        ).scalar_one()
        conn.execute(sa.insert(raw_map), [
            {"seq": s, "chunk": int(chunk), "line": n} for n, s in enumerate(seqs)
        ])
        seqs.clear()
        lines.clear()

    rows = conn.execute(
        sa.select(raw_events.c.seq, raw_events.c.import_id, raw_events.c.format,
                  raw_events.c.lenient, raw_events.c.inbound_id, raw_events.c.kind,
                  raw_events.c.payload).order_by(raw_events.c.seq),
        execution_options={"yield_per": 5000},
    )
    with rows:  # a server-side cursor on PostgreSQL: closed even when a line fails
        for seq, import_id, fmt, lenient, inbound_id, kind, payload in rows:
            key = (import_id, fmt, bool(lenient), inbound_id)
            if key != group or len(lines) >= CHUNK:
                flush()
                group = key
            if fmt == "csv":  # a CSV row's raw form now carries its kind
                payload = json.dumps({"kind": kind, **json.loads(payload)}, ensure_ascii=False)
            seqs.append(int(seq))
            lines.append(payload.replace("\n", " "))  # a JSON line holds no line break anyway
    flush()


def downgrade() -> None:
    conn = op.get_bind()
    op.create_table(
        'raw_events',
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('import_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('record_id', sa.Text(), nullable=False),
        sa.Column('format', sa.String(length=10), nullable=False),
        sa.Column('lenient', sa.Boolean(), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('digest', sa.String(length=32), nullable=False),
        sa.Column('inbound_id', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_raw_events')),
    )
    op.create_index(op.f('ix_raw_events_import_id'), 'raw_events', ['import_id'], unique=False)
    op.create_index('ix_raw_events_kind_record', 'raw_events', ['kind', 'record_id'],
                    unique=False)
    # the lines that records (current or replaced versions) point at, in log order
    pointed: dict[tuple[int, int], tuple[str, str, str]] = {}
    tables = _tables()
    for kind, table in tables.items():
        for rid, dig, raw, line in conn.execute(
            sa.text(f"SELECT id, _digest, _raw, _line FROM {table}")
        ):
            pointed[(int(raw), int(line))] = (kind, rid, dig)
    for kind, rid, dig, raw, line in conn.execute(
        sa.text("SELECT kind, record_id, digest, raw, line FROM record_versions")
    ):
        pointed[(int(raw), int(line))] = (kind, rid, dig)
    events = []
    for seq, import_id, fmt, lenient, inbound_id, body in conn.execute(
        sa.text("SELECT seq, import_id, format, lenient, inbound_id, body FROM raw_chunks "
                "ORDER BY seq")
    ):
        text = zstandard.ZstdDecompressor().decompress(body).decode("utf-8")
        for n, payload in enumerate(text.split("\n")):
            found = pointed.get((int(seq), n))
            if found is None:
                continue  # a line a later line of the same import undid
            if fmt == "csv":
                row = json.loads(payload)
                row.pop("kind", None)
                payload = json.dumps(row, ensure_ascii=False)
            events.append({"import_id": import_id, "kind": found[0], "record_id": found[1],
                           "format": fmt, "lenient": bool(lenient), "payload": payload,
                           "digest": found[2], "inbound_id": inbound_id})
    if events:
        conn.execute(sa.insert(raw_events), events)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_fingerprint', ['fingerprint'], unique=False)
    for table in tables.values():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('_line')
            batch_op.drop_column('_raw')
    op.drop_index('ix_record_versions_kind_record', table_name='record_versions')
    op.drop_table('record_versions')
    op.drop_index(op.f('ix_raw_chunks_import_id'), table_name='raw_chunks')
    op.drop_table('raw_chunks')
