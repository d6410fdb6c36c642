"""Schema additions for issue 5: when a case's assignee was notified, its language; the queue's index

Revision ID: c0ffee000005
Revises: c0ffee000004
Create Date: 2026-11-22 14:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c0ffee000005'
down_revision = 'c0ffee000004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notified_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('language', sa.String(length=2), nullable=True))
        batch_op.create_index('ix_cases_queue', ['status', 'severity', 'opened_at', 'first_contact_due_at', 'first_contact_at'], unique=False)


def downgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_queue')
        batch_op.drop_column('language')
        batch_op.drop_column('notified_at')
