"""report deliveries record each recipient as their message is handed over, and a claim
can be given up (empty claimed_at), so a report taken up again after a refusal goes only to
those who did not get it

Revision ID: 7c3d9e1f2a64
Revises: 5b7e2c9d4a10
Create Date: 2026-12-04 03:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c3d9e1f2a64'
down_revision = '5b7e2c9d4a10'
branch_labels = None
depends_on = None


def upgrade():
    # No other table refers to report_deliveries: SQLite may copy it.
    with op.batch_alter_table('report_deliveries', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('delivered_to', sa.Text(), nullable=False, server_default='')
        )
        batch_op.alter_column('claimed_at', existing_type=sa.DateTime(), nullable=True)


def downgrade():
    with op.batch_alter_table('report_deliveries', schema=None) as batch_op:
        batch_op.alter_column('claimed_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.drop_column('delivered_to')
