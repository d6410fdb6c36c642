"""cases keep their SLA clock figures (business hours to first contact and resolution, the
resolution due time, the recovery counts) under the clock settings they were counted with;
empty after this migration, so the first read or dispatcher pass counts every case once;
an index covering what the dashboard reads of them; flags indexed by time; health
snapshots indexed for the movers (each account's score at a week's end); answers by
polarity (the dashboard's most negative comments)

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
    op.create_index('ix_cases_clock', 'cases', [
        'opened_at', 'account_id', 'status', 'first_contact_due_at', 'first_contact_at',
        'hours_to_first_contact', 'resolved_at', 'resolution_due_at', 'hours_to_resolution',
        'detractors_answered_again', 'detractors_recovered',
    ], unique=False)
    op.drop_index('ix_cases_opened_at', table_name='cases')  # the new index starts with it
    op.create_index('ix_flags_created_at', 'flags', ['created_at'], unique=False)
    op.create_index(
        'ix_health_snapshots_at_score', 'health_snapshots', ['at', 'account_id', 'score', 'band'],
        unique=False,
    )
    op.drop_index('ix_health_snapshots_at', table_name='health_snapshots')  # its first column
    op.create_index('ix_answers_polarity', 'answers', ['polarity'], unique=False)


def downgrade():
    op.drop_index('ix_answers_polarity', table_name='answers')
    op.create_index('ix_health_snapshots_at', 'health_snapshots', ['at'], unique=False)
    op.drop_index('ix_health_snapshots_at_score', table_name='health_snapshots')
    op.drop_index('ix_flags_created_at', table_name='flags')
    op.drop_index('ix_cases_clock', table_name='cases')
    op.create_index('ix_cases_opened_at', 'cases', ['opened_at'], unique=False)
    op.drop_index('ix_cases_clock_key', table_name='cases')
    for name in (
        'clock_key', 'clock_mark', 'detractors_recovered', 'detractors_answered_again',
        'resolution_due_at', 'hours_to_resolution', 'hours_to_first_contact',
    ):
        op.drop_column('cases', name)
