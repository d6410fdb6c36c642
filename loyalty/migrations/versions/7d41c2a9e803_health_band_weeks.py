"""health band rollup: the accounts per band and their annual value at each week's end, per
segment and owner, and the weeks to count again

Revision ID: 7d41c2a9e803
Revises: 3e5f7a9b1c02
Create Date: 2026-12-04 18:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7d41c2a9e803'
down_revision = '3e5f7a9b1c02'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'health_band_weeks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('segment', sa.String(length=3), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('band', sa.String(length=8), nullable=False),
        sa.Column('accounts', sa.Integer(), nullable=False),
        sa.Column('value_cents', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_health_band_weeks')),
        sa.UniqueConstraint('at', 'segment', 'owner_id', 'band', name='health_band_week_key'),
    )
    op.create_index(op.f('ix_health_band_weeks_at'), 'health_band_weeks', ['at'], unique=False)
    op.create_table(
        'health_stale_weeks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_health_stale_weeks')),
    )
    op.create_index(op.f('ix_health_stale_weeks_at'), 'health_stale_weeks', ['at'], unique=False)
    # Filled by `flask --app loyalty rollups rebuild`, or week by week as snapshots change.
    op.execute(
        "INSERT INTO health_stale_weeks (at) SELECT DISTINCT at FROM health_snapshots"
    )


def downgrade():
    op.drop_index(op.f('ix_health_stale_weeks_at'), table_name='health_stale_weeks')
    op.drop_table('health_stale_weeks')
    op.drop_index(op.f('ix_health_band_weeks_at'), table_name='health_band_weeks')
    op.drop_table('health_band_weeks')
