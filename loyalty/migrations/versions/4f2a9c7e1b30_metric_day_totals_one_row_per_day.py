"""metric day totals: each local day's metric rollup rows summed over every key, what an
unfiltered trend or total reads; filled from the rollup rows already counted

Revision ID: 4f2a9c7e1b30
Revises: 7d41c2a9e803
Create Date: 2026-12-06 22:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4f2a9c7e1b30'
down_revision = '7d41c2a9e803'
branch_labels = None
depends_on = None

COUNTS = (
    'responses', 'promoters', 'passives', 'detractors', 'csat_n', 'csat_satisfied', 'ces_n',
    'ces_sum', 'ces_squares', 'commented', 'comments_scored', 'polarity_sum',
    'polarity_squares', 'comments_negative', 'delivered', 'answered',
)
FLOATS = ('polarity_sum', 'polarity_squares')


def upgrade():
    op.create_table(
        'metric_day_totals',
        sa.Column('day', sa.Date(), nullable=False),
        *(
            sa.Column(name, sa.Double() if name in FLOATS else sa.Integer(), nullable=False)
            for name in COUNTS
        ),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_metric_day_totals')),
    )
    # The days already counted, summed; stale days are counted again with their totals.
    columns = ', '.join(COUNTS)
    sums = ', '.join(f'sum({name})' for name in COUNTS)
    op.execute(
        f'INSERT INTO metric_day_totals (day, {columns}) '
        f'SELECT day, {sums} FROM metric_days GROUP BY day'
    )


def downgrade():
    op.drop_table('metric_day_totals')
