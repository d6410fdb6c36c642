"""answer themes: what each comment is about, each theme with its own polarity (JSON text)

Revision ID: 7a3c9e51d2b4
Revises: 8d4e0f2a3b75
Create Date: 2026-12-04 03:20:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '7a3c9e51d2b4'
down_revision = '8d4e0f2a3b75'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN (no batch copy): other tables refer to answers' neighbours, and a
    # nullable column needs no rebuild on SQLite. Old answers get their themes from
    # `flask sentiment rescore` (the scorer version went up).
    op.add_column('answers', sa.Column('themes', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.drop_column('themes')
