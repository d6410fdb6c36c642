"""import uploads: a CSV checked at /admin/imports waits here for its confirmation

Revision ID: 9c4d1e2f3a58
Revises: 5b2e8c1d9f40
Create Date: 2026-12-04 18:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9c4d1e2f3a58'
down_revision = '5b2e8c1d9f40'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'import_uploads',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token', sa.String(length=43), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('survey', sa.String(length=64), nullable=True),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
        sa.Column('uploaded_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['uploaded_by_id'], ['users.id'],
            name=op.f('fk_import_uploads_uploaded_by_id_users'), ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_uploads')),
        sa.UniqueConstraint('token', name=op.f('uq_import_uploads_token')),
    )
    op.create_index(
        op.f('ix_import_uploads_uploaded_at'), 'import_uploads', ['uploaded_at'], unique=False
    )


def downgrade():
    op.drop_index(op.f('ix_import_uploads_uploaded_at'), table_name='import_uploads')
    op.drop_table('import_uploads')
