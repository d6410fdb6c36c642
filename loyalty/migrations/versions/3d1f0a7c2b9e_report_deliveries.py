"""report deliveries: each scheduled report goes out once per period; a contact's answers
indexed in time order (the recovery rate seeks each detractor's next answer); health
snapshots indexed by week and band (the dashboard's bands over time)

Revision ID: 3d1f0a7c2b9e
Revises: 09073af8a60f
Create Date: 2026-12-04 00:10:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '3d1f0a7c2b9e'
down_revision = '09073af8a60f'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'report_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('report', sa.String(length=64), nullable=False),
        sa.Column('period_first', sa.Date(), nullable=False),
        sa.Column('period_last', sa.Date(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_deliveries')),
        sa.UniqueConstraint('report', 'period_first', name='report_period'),
    )
    # A plain CREATE INDEX: other tables refer to responses, which SQLite cannot copy.
    op.create_index(
        'ix_responses_contact_submitted', 'responses', ['contact_id', 'submitted_at'], unique=False
    )


    op.create_index(
        'ix_health_snapshots_at_band', 'health_snapshots', ['at', 'band', 'account_id'],
        unique=False,
    )


def downgrade():
    op.drop_index('ix_health_snapshots_at_band', table_name='health_snapshots')
    op.drop_index('ix_responses_contact_submitted', table_name='responses')
    op.drop_table('report_deliveries')
