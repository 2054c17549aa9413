"""programme list: title sort index; SQLite covering index for short-term (LIKE) search

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 19:30:00

``ix_programs_search_text`` (SQLite only) lets a LIKE '%term%' for terms too short for the trigram index
read one narrow index instead of every wide programme row (``archive.programs.search``). PostgreSQL gets no
such index: a B-tree entry cannot hold a long search text there, and its sequential scans are fast enough.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_programs_title', 'programs', ['title'], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE INDEX ix_programs_search_text ON programs (search_text)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX IF EXISTS ix_programs_search_text")
    op.drop_index('ix_programs_title', table_name='programs')
