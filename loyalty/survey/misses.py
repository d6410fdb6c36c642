"""A limit on guessing survey links: too many unknown tokens from one client is a 429.

Only misses count, so a real link always opens, whoever asks. The misses are rows of a
table, not counters in one process, so every gunicorn worker (and every server sharing
PostgreSQL) sees the same count; rows older than the window are deleted as new ones come.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import abort, current_app, make_response, render_template, request

from ..db import db
from ..i18n import best_language
from ..models import LinkMiss, utcnow


def refuse_if_guessing(now: dt.datetime | None = None) -> None:
    """Count this request's unknown link; past the limit, answer 429 with Retry-After."""
    now = now or utcnow()
    window = dt.timedelta(seconds=int(current_app.config["LINK_MISS_WINDOW"]))
    client = (request.remote_addr or "unknown")[:64]
    db.session.rollback()  # nothing of this request is pending: a link that opens nothing
    db.session.execute(sa.delete(LinkMiss).where(LinkMiss.at < now - window))
    db.session.add(LinkMiss(client=client, at=now))
    db.session.flush()
    first, count = db.session.execute(
        sa.select(sa.func.min(LinkMiss.at), sa.func.count()).where(
            LinkMiss.client == client, LinkMiss.at >= now - window
        )
    ).one()
    db.session.commit()
    if count <= int(current_app.config["LINK_MISS_LIMIT"]):
        return
    retry = max(1, int((first + window - now).total_seconds()) + 1)
    language = best_language(request.accept_languages)
    page = render_template("survey/too_many.html", language=language, seconds=retry)
    abort(make_response(page, 429, {"Retry-After": str(retry)}))
