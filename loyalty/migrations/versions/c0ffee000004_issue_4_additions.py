"""Schema additions for issue 4 (kept empty until that work needs a change)

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
    pass


def downgrade():
    pass
