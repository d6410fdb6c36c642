"""webhook deliveries keep the start of the receiver's last answer, 2xx ones too, for the
admin page's last deliveries (a test event answered 200 by the wrong app shows as such)

Revision ID: 7a3c9e2b5d61
Revises: 9c4d1e2f3a58
Create Date: 2026-12-04 18:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7a3c9e2b5d61'
down_revision = '9c4d1e2f3a58'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN: a nullable column needs no table copy on SQLite.
    op.add_column('webhook_deliveries', sa.Column('last_answer', sa.String(length=500), nullable=True))


def downgrade():
    op.drop_column('webhook_deliveries', 'last_answer')
