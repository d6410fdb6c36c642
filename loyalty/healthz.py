"""``GET /healthz`` for load balancers: 200 when this server can serve, 503 when not.

"Can serve" is: the database answers and its schema is the one this code expects (the
migrations are at their head), so a server started before ``flask db upgrade`` is taken out
of the pool instead of answering 500s. The answer says nothing else (no version, no error
text, no database name): it is public.
"""

from __future__ import annotations

import functools
import typing as t

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Blueprint

from .db import MIGRATIONS, db

bp = Blueprint("healthz", __name__)


@functools.cache
def expected_heads() -> frozenset[str]:
    """The head revisions of the migrations shipped with this code (read once)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def ready() -> bool:
    """The database answers and is migrated to the heads this code ships."""
    try:
        stored = frozenset(db.session.scalars(sa.text("SELECT version_num FROM alembic_version")))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return False
    finally:
        db.session.close()  # no transaction left open between probes
    return stored == expected_heads()


@bp.get("/healthz")
def healthz() -> t.Any:
    """For load balancers: 200 ``ok`` or 503 ``unavailable``, nothing more."""
    if ready():
        return {"status": "ok"}, 200, {"Cache-Control": "no-store"}
    return {"status": "unavailable"}, 503, {"Cache-Control": "no-store"}
