"""programme search and web list: posting date, sort indexes, full-text index (FTS5 trigram / pg_trgm)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 18:50:00

SQLite gets an FTS5 table with the trigram tokenizer over ``programs.search_text`` (external content, kept
in step by triggers), PostgreSQL a pg_trgm GIN index on the same column; both answer substring queries of
three characters or more (Chinese included) from an index. ``archive.programs.search`` reads them. Both
are left out of the model comparison (``archive.programs.search.include_object``).

Note for later migrations: a SQLite batch rebuild of ``programs`` drops its triggers; re-run
``SQLITE_TRIGGERS`` afterwards.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGERS = (
    "CREATE TRIGGER programs_fts_ai AFTER INSERT ON programs BEGIN "
    "INSERT INTO programs_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER programs_fts_ad AFTER DELETE ON programs BEGIN "
    "INSERT INTO programs_fts(programs_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER programs_fts_au AFTER UPDATE OF search_text ON programs BEGIN "
    "INSERT INTO programs_fts(programs_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO programs_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
)


def _posted(fields: object) -> str | None:
    import json

    if isinstance(fields, str):
        fields = json.loads(fields or "{}")
    value = fields.get("date") if isinstance(fields, dict) else None
    text = str(value)[:10] if value else ""
    return text if len(text) == 10 and text[4] == "-" and text[7] == "-" and text[:4].isdigit() else None


def upgrade() -> None:
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('posted', sa.String(length=10), nullable=True))
        batch_op.create_index('ix_programs_first_seen', ['first_seen'], unique=False)
        batch_op.create_index('ix_programs_last_seen', ['last_seen'], unique=False)
        batch_op.create_index('ix_programs_posted', ['posted'], unique=False)
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, fields FROM programs")).all()
    updates = [{"pid": pid, "posted": _posted(fields)} for pid, fields in rows]
    if updates:
        bind.execute(sa.text("UPDATE programs SET posted = :posted WHERE id = :pid"), updates)
    if bind.dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE programs_fts USING fts5(search_text, content='programs', "
                   "content_rowid='id', tokenize='trigram')")
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
        op.execute("INSERT INTO programs_fts(programs_fts) VALUES ('rebuild')")
    elif bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_programs_search_trgm ON programs USING gin (search_text gin_trgm_ops)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("programs_fts_ai", "programs_fts_ad", "programs_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS programs_fts")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_programs_search_trgm")
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.drop_index('ix_programs_posted')
        batch_op.drop_index('ix_programs_last_seen')
        batch_op.drop_index('ix_programs_first_seen')
        batch_op.drop_column('posted')
