"""queue workers: the `listwatch worker` processes of distributed mode (host, pid, heartbeat, current jobs)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 22:05:00

Procrastinate's own ``procrastinate_workers`` table holds only an id and a heartbeat; this one says which
machine and process each worker is and which crawls it runs, for ``listwatch status``, the web and recovery.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'queue_workers',
        sa.Column('id', sa.String(length=120), nullable=False),
        sa.Column('host', sa.String(length=200), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('concurrency', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_heartbeat', sa.DateTime(timezone=True), nullable=False),
        sa.Column('stopping', sa.Boolean(), nullable=False),
        sa.Column('current', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_queue_workers_last_heartbeat'), 'queue_workers', ['last_heartbeat'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_queue_workers_last_heartbeat'), table_name='queue_workers')
    op.drop_table('queue_workers')
