"""Schema additions for issue 4: when an invitation's one reminder is due, and its tries

Revision ID: c0ffee000004
Revises: a43113825a51
Create Date: 2026-11-22 14:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c0ffee000004'
down_revision = 'a43113825a51'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminder_due_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('reminder_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_invitations_reminder_due_at'), ['reminder_due_at'], unique=False)


def downgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_reminder_due_at'))
        batch_op.drop_column('reminder_attempts')
        batch_op.drop_column('reminder_due_at')
