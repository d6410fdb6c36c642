"""follow-up outbox: an answer's flag, case, webhooks, rollups and health are done after
the customer's reply, from a row committed with the answer

Revision ID: 5b2e8c1d9f40
Revises: 5b2e7c91d0a4
Create Date: 2026-12-04 03:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b2e8c1d9f40'
down_revision = '5b2e7c91d0a4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'follow_ups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('response_id', sa.Integer(), nullable=False),
        sa.Column('created', sa.Boolean(), nullable=False),
        sa.Column('saved_at', sa.DateTime(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_ups')),
    )
    op.create_index(
        op.f('ix_follow_ups_next_attempt_at'), 'follow_ups', ['next_attempt_at'], unique=False
    )
    op.create_index(op.f('ix_follow_ups_response_id'), 'follow_ups', ['response_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_follow_ups_response_id'), table_name='follow_ups')
    op.drop_index(op.f('ix_follow_ups_next_attempt_at'), table_name='follow_ups')
    op.drop_table('follow_ups')
