"""programme search: short terms from the trigram index (SQLite)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 19:45:00

The FTS5 trigram table keeps its own copy of ``search_text`` with two spaces appended, so that every one- or
two-character term that occurs is the start of at least one indexed trigram; ``programs_fts_vocab`` lists the
trigrams, and ``archive.programs.search`` turns a short term into the trigrams that begin with it (a range read
of the vocabulary) instead of scanning every row. The covering index of 0004 is no longer needed.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PADDED = "new.search_text || '  '"
TRIGGERS = (
    f"CREATE TRIGGER programs_fts_ai AFTER INSERT ON programs BEGIN "
    f"INSERT INTO programs_fts(rowid, search_text) VALUES (new.id, {PADDED}); END",
    "CREATE TRIGGER programs_fts_ad AFTER DELETE ON programs BEGIN "
    "DELETE FROM programs_fts WHERE rowid = old.id; END",
    f"CREATE TRIGGER programs_fts_au AFTER UPDATE OF search_text ON programs BEGIN "
    f"DELETE FROM programs_fts WHERE rowid = old.id; "
    f"INSERT INTO programs_fts(rowid, search_text) VALUES (new.id, {PADDED}); END",
)
OLD_TRIGGERS = (
    "CREATE TRIGGER programs_fts_ai AFTER INSERT ON programs BEGIN "
    "INSERT INTO programs_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER programs_fts_ad AFTER DELETE ON programs BEGIN "
    "INSERT INTO programs_fts(programs_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER programs_fts_au AFTER UPDATE OF search_text ON programs BEGIN "
    "INSERT INTO programs_fts(programs_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO programs_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
)


def _drop() -> None:
    for name in ("programs_fts_ai", "programs_fts_ad", "programs_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS programs_fts_vocab")
    op.execute("DROP TABLE IF EXISTS programs_fts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop()
    op.execute("CREATE VIRTUAL TABLE programs_fts USING fts5(search_text, tokenize='trigram')")
    op.execute("CREATE VIRTUAL TABLE programs_fts_vocab USING fts5vocab(programs_fts, 'row')")
    for statement in TRIGGERS:
        op.execute(statement)
    op.execute("INSERT INTO programs_fts(rowid, search_text) SELECT id, search_text || '  ' FROM programs")
    op.execute("DROP INDEX IF EXISTS ix_programs_search_text")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop()
    op.execute("CREATE VIRTUAL TABLE programs_fts USING fts5(search_text, content='programs', "
               "content_rowid='id', tokenize='trigram')")
    for statement in OLD_TRIGGERS:
        op.execute(statement)
    op.execute("INSERT INTO programs_fts(programs_fts) VALUES ('rebuild')")
    op.execute("CREATE INDEX ix_programs_search_text ON programs (search_text)")
