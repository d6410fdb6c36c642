"""Staff emails unique without regard to case: stored in lower case, clashes refused

Revision ID: c65468444872
Revises: c0ffee000006
Create Date: 2026-12-02 16:25:21.145256

Every user's email is lower-cased, as contact emails were in c0ffee000006. From now on the
app stores staff emails in lower case (loyalty.auth.create_user) and signs in by the
lower-cased address, so the existing unique constraint on users.email (uq_users_email) is
what keeps "Ann@" and "ann@" from being two users: that is the database-level guarantee.

Unlike contacts, users whose emails would clash once lower-cased are neither skipped nor
merged: they are separate sign-ins, perhaps with different roles and cases assigned. The
upgrade then stops before changing anything, names the addresses, and asks the admin to
rename one of each group and run the upgrade again.

No index or constraint is added, so there is no batch block. A unique index on
lower(email) is not reflected by SQLAlchemy on SQLite (a warning on every autogenerate, and
it would be lost whenever batch mode rebuilds the table), and loyalty.db replaces SQLite's
lower() with Python's on the app's connections, so the index would depend on the
connection. A CHECK (email = lower(email)) needs batch mode to rebuild users on SQLite,
which the foreign keys from accounts, cases and case_events refuse while users are in use.
Lower-casing is done in Python, as the app does.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c65468444872'
down_revision = 'c0ffee000006'
branch_labels = None
depends_on = None

users = sa.table('users', sa.column('id', sa.Integer), sa.column('email', sa.String))


def upgrade():
    bind = op.get_bind()
    rows = bind.execute(sa.select(users.c.id, users.c.email).order_by(users.c.id)).all()
    groups = {}
    for id_, email in rows:
        groups.setdefault(email.lower(), []).append((id_, email))
    clashes = [group for _, group in sorted(groups.items()) if len(group) > 1]
    if clashes:
        # RuntimeError: `flask db upgrade` prints it as "Error: ..." and exits with 1.
        lines = [", ".join(f"{email} (id {id_})" for id_, email in group) for group in clashes]
        raise RuntimeError(
            "Staff users whose emails differ only in letter case cannot be told apart once "
            "emails are unique without regard to case:\n  "
            + "\n  ".join(lines)
            + "\nNothing was changed. Rename one user of each group to another address, e.g. "
            "UPDATE users SET email = 'ann.old@example.com' WHERE id = ...; (deactivate it as "
            "well, active = false, if nobody should sign in with it; deactivating alone is not "
            "enough, as both would still get the same address), then run "
            "`flask --app loyalty db upgrade` again."
        )
    for id_, email in rows:
        if email != email.lower():
            bind.execute(sa.update(users).where(users.c.id == id_).values(email=email.lower()))


def downgrade():
    pass  # the original case is not kept; lower-case addresses sign in as well
