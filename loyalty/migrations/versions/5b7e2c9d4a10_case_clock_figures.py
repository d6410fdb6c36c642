"""cases keep their SLA clock figures (business hours to first contact and resolution, the
resolution due time, the recovery counts) under the clock settings they were counted with;
empty after this migration, so the first read or dispatcher pass counts every case once

Revision ID: 5b7e2c9d4a10
Revises: 3d1f0a7c2b9e
Create Date: 2026-12-04 03:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b7e2c9d4a10'
down_revision = '3d1f0a7c2b9e'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN: other tables refer to cases, which SQLite cannot copy.
    op.add_column('cases', sa.Column('hours_to_first_contact', sa.Double(), nullable=True))
    op.add_column('cases', sa.Column('hours_to_resolution', sa.Double(), nullable=True))
    op.add_column('cases', sa.Column('resolution_due_at', sa.DateTime(), nullable=True))
    for name in ('detractors_answered_again', 'detractors_recovered', 'clock_mark'):
        op.add_column(
            'cases', sa.Column(name, sa.Integer(), nullable=False, server_default='0')
        )
    op.add_column('cases', sa.Column('clock_key', sa.String(length=16), nullable=True))
    op.create_index('ix_cases_clock_key', 'cases', ['clock_key'], unique=False)


def downgrade():
    op.drop_index('ix_cases_clock_key', table_name='cases')
    for name in (
        'clock_key', 'clock_mark', 'detractors_recovered', 'detractors_answered_again',
        'resolution_due_at', 'hours_to_resolution', 'hours_to_first_contact',
    ):
        op.drop_column('cases', name)
