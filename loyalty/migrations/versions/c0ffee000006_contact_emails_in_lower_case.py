"""Contact emails in lower case, so "Mette@" and "mette@" are one contact from now on

Revision ID: c0ffee000006
Revises: c0ffee000005
Create Date: 2026-11-22 16:20:00

Only the data changes. An address that would clash with another contact once lower-cased
(the same person imported twice in different case) is left as it is, so nothing is merged
or lost; the oldest of such a group is lower-cased when no contact has the lower-case form.
Lower-casing is done in Python, since SQLite's lower() only knows ASCII.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c0ffee000006'
down_revision = 'c0ffee000005'
branch_labels = None
depends_on = None

contacts = sa.table('contacts', sa.column('id', sa.Integer), sa.column('email', sa.String))


def upgrade():
    bind = op.get_bind()
    rows = bind.execute(sa.select(contacts.c.id, contacts.c.email).order_by(contacts.c.id))
    mixed = [(id_, email) for id_, email in rows if email != email.lower()]  # oldest first
    for id_, email in mixed:
        lower = email.lower()
        if bind.execute(sa.select(contacts.c.id).where(contacts.c.email == lower)).first():
            continue
        bind.execute(sa.update(contacts).where(contacts.c.id == id_).values(email=lower))


def downgrade():
    pass  # the original case is not kept; lower-case addresses work as well
