"""audit log: the one change it accepts is forgetting an old event's client address
(retention), everything else still refused

Revision ID: 3e5f7a9b1c02
Revises: 7a3c9e2b5d61
Create Date: 2026-12-04 18:30:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '3e5f7a9b1c02'
down_revision = '7a3c9e2b5d61'
branch_labels = None
depends_on = None

COLUMNS = ('id', 'at', 'actor_id', 'actor', 'source', 'action', 'target', 'detail')
REFUSE = "the audit log is append-only"


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' AND OLD.ip IS NOT NULL AND NEW.ip IS NULL "
            "AND to_jsonb(NEW) - 'ip' = to_jsonb(OLD) - 'ip' THEN RETURN NEW; END IF; "
            f"RAISE EXCEPTION '{REFUSE}'; END $$"
        )
    else:
        same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in COLUMNS)
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            f"WHEN NOT (OLD.ip IS NOT NULL AND NEW.ip IS NULL AND {same}) "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSE}'); END"
        )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{REFUSE}'; END $$"
        )
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSE}'); END"
        )
