"""check days: what retention pruned of each source's unchanged checks, per UTC day

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 04:30:00

Old ``crawl_runs``/``captures``/``warc_files`` rows of complete quick checks that changed nothing are deleted
after ``retention.unchanged_days`` (``archive/retention.py``); this table keeps their daily count and totals and
the list of their WARC objects (which stay in the store).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'check_days',
        sa.Column('source_id', sa.String(length=64), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('checks', sa.Integer(), nullable=False),
        sa.Column('pages', sa.Integer(), nullable=False),
        sa.Column('warc_bytes', sa.BigInteger(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.Column('warcs', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('source_id', 'day', 'kind'),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('check_days')
