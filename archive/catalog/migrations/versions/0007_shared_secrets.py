"""shared secrets: keys every machine of an install must share (the evidence-link key)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 01:10:00

On a PostgreSQL catalog the key that signs evidence links and web sessions is generated once into this table
(unless ``api.link_secret`` is set), so a link signed by the scheduler on one machine verifies on a
``listwatch serve`` on another.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'shared_secrets',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('shared_secrets')
