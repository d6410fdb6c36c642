"""privacy requests served (access exports and erasures), the erasure receipt

Revision ID: 8d4e0f2a3b75
Revises: 7c3d9e1f2a64
Create Date: 2026-12-04 03:55:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8d4e0f2a3b75'
down_revision = '7c3d9e1f2a64'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'privacy_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('done_at', sa.DateTime(), nullable=False),
        sa.Column('done_by_id', sa.Integer(), nullable=True),
        sa.Column('via', sa.String(length=16), nullable=False),
        sa.Column('counts', sa.Text(), nullable=False),
        sa.CheckConstraint("kind IN ('export', 'erase')", name=op.f('ck_privacy_requests_kind')),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_privacy_requests_contact_id_contacts')),
        sa.ForeignKeyConstraint(['done_by_id'], ['users.id'], name=op.f('fk_privacy_requests_done_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_requests')),
    )
    op.create_index('ix_privacy_requests_contact_id', 'privacy_requests', ['contact_id'], unique=False)


def downgrade():
    op.drop_index('ix_privacy_requests_contact_id', table_name='privacy_requests')
    op.drop_table('privacy_requests')
