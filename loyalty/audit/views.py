"""``/admin/audit``: the audit log for admins, filtered by who, what and when, a page at a
time, and as CSV (itself an export, so it is logged)."""

from __future__ import annotations

import io
import typing as t

from flask import Blueprint, Response, render_template, request

from .. import periods
from ..auth import role_required
from ..db import db
from ..models import ADMIN_ROLES
from ..periods import PeriodError
from ..triage.settings import settings
from . import log

bp = Blueprint("audit", __name__)
DEFAULT_DAYS = 30


def _filters() -> tuple[log.Filters, periods.Period, str | None]:
    tz = settings().calendar.tz
    today = periods.today(tz)
    message = None
    try:
        chosen = periods.parse(request.args, today=today, default_days=DEFAULT_DAYS)
    except PeriodError as exc:
        message = str(exc)
        chosen = periods.parse({}, today=today, default_days=DEFAULT_DAYS)
    since, until = chosen.bounds(tz)
    who = request.args.get("who", "").strip()[:254]
    what = request.args.get("what", "").strip()[:64]
    return log.Filters(actor=who, action=what, since=since, until=until), chosen, message


@bp.get("/admin/audit")
@role_required(*ADMIN_ROLES)
def index() -> t.Any:
    """The events of a period, newest first; ``before`` pages on (a keyset cursor)."""
    filters, chosen, message = _filters()
    raw = request.args.get("before", "")
    before = int(raw) if raw.isdigit() and len(raw) < 10 else None
    if raw and before is None:
        message = message or "The page cursor (before) must be a number."
    events, next_before = log.page(filters, before)
    args = {**chosen.args(), "who": filters.actor, "what": filters.action}
    return render_template(
        "audit/index.html",
        events=events,
        next_before=next_before,
        filters=filters,
        period=chosen,
        args={k: v for k, v in args.items() if v},
        actions=log.actions(),
        tz=settings().calendar.tz,
        message=message,
    ), (400 if message else 200)


@bp.get("/admin/audit.csv")
@role_required(*ADMIN_ROLES)
def download() -> t.Any:
    """The filtered events as CSV; downloading them is an event of its own."""
    filters, chosen, message = _filters()
    if message:
        return Response(message + "\n", 400, mimetype="text/plain")
    out = io.StringIO()
    count = log.write_csv(filters, out)
    log.record(
        "export.audit",
        detail={"rows": count, "from": chosen.first.isoformat(), "to": chosen.last.isoformat()},
    )
    db.session.commit()
    name = f"audit-{chosen.first.isoformat()}-{chosen.last.isoformat()}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
