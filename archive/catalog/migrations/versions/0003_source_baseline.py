"""source baseline: the run that set a source's baseline, recorded with its first programme diff

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 18:50:00

Existing sources that already hold programmes are baselined by the earliest run that recorded a version
of one of them; a source whose first crawl was killed before its diff stays without a baseline, so its
next crawl is the baseline (no flood of "new" alerts).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('sources') as batch:
        batch.add_column(sa.Column('baseline_run', sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE sources SET baseline_run = (SELECT MIN(v.run_id) FROM program_versions v "
        "JOIN programs p ON p.id = v.program_id WHERE p.source_id = sources.id)")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('sources') as batch:
        batch.drop_column('baseline_run')
