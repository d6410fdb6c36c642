"""Recording and reading the audit log (:class:`loyalty.models.AuditEvent`).

``record`` adds the event to the caller's transaction, so an action that is rolled back
leaves no trace of having happened; a failed sign-in, where nothing else is written, is
committed by its caller. Who acted is worked out here: the signed-in staff member of a web
request (with the client's address), ``cli:<operator>`` for a command, else ``anonymous``.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import json
import re
import typing as t

import sqlalchemy as sa
from flask import has_request_context, request
from flask_login import current_user

from ..checks import is_one_line, spreadsheet_safe
from ..db import db
from ..models import AuditEvent, User
from ..periods import csv_time

#: What an event may never carry: a detail key that names one of these is refused.
FORBIDDEN_DETAIL = re.compile(r"password|token|secret|comment|body|text|answer|^key$", re.I)
#: A detail value is a short plain field (an id, a role, a name of a thing), never prose.
MAX_DETAIL_VALUE = 200
#: Rows per page of ``/admin/audit``.
PAGE_SIZE = 50
CSV_HEADER = ["id", "at", "actor", "actor_id", "source", "ip", "action", "target", "detail"]

Detail = t.Mapping[str, str | int | bool | None]


def record(
    action: str,
    *,
    target: str | None = None,
    user: User | None = None,
    detail: Detail | None = None,
) -> AuditEvent:
    """Add an audit event to the session (the caller commits). ``user`` is who acted when
    it is not the signed-in staff member (a sign-in, before the session knows them)."""
    clean = _checked(detail or {})
    in_request = has_request_context()
    if user is None and in_request and current_user.is_authenticated:
        user = t.cast(User, current_user._get_current_object())
    if user is not None:
        actor = user.email
    elif in_request:
        actor = "anonymous"
    else:
        actor = f"cli:{_operator()}"
    if not in_request:
        source, ip = "cli", None
    else:
        source = "api" if request.path.startswith("/api/") else "web"
        ip = (request.remote_addr or "")[:64] or None
    event = AuditEvent(
        actor_id=user.id if user is not None else None,
        actor=actor[:254],
        source=source,
        ip=ip,
        action=action,
        target=target,
        detail=json.dumps(clean, sort_keys=True) if clean else None,
    )
    db.session.add(event)
    return event


def _checked(detail: Detail) -> dict[str, t.Any]:
    """The detail as stored: short scalar fields, none of them secret or customer text."""
    for key, value in detail.items():
        if FORBIDDEN_DETAIL.search(key):
            raise ValueError(f"audit detail {key!r}: secrets and customer text are never logged")
        if isinstance(value, str) and (len(value) > MAX_DETAIL_VALUE or not is_one_line(value)):
            raise ValueError(f"audit detail {key!r}: a short one-line value only")
    return dict(detail)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in a container
        return "unknown"


class Filters(t.NamedTuple):
    """What ``/admin/audit`` and ``export audit`` narrow by; empty fields narrow nothing."""

    actor: str = ""
    action: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def query(filters: Filters) -> sa.Select[AuditEvent]:
    """The events that match, newest first. ``actor`` matches part of who; ``action``
    an action or a family of them (``sign_in`` matches ``sign_in.failed``)."""
    q = sa.select(AuditEvent).order_by(AuditEvent.id.desc())
    if filters.actor:
        q = q.where(AuditEvent.actor.contains(filters.actor.lower(), autoescape=True))
    if filters.action:
        q = q.where(
            (AuditEvent.action == filters.action)
            | AuditEvent.action.startswith(filters.action + ".", autoescape=True)
        )
    if filters.since is not None:
        q = q.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        q = q.where(AuditEvent.at < filters.until)
    return q


def page(filters: Filters, before: int | None = None) -> tuple[list[AuditEvent], int | None]:
    """One page of events, newest first, and the id to pass as ``before`` for the next
    (keyset: page 100 costs what page 1 does); ``None`` when this is the last page."""
    q = query(filters)
    if before is not None:
        q = q.where(AuditEvent.id < before)
    rows = list(db.session.scalars(q.limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, (rows[-1].id if more and rows else None)


def actions() -> list[str]:
    """Every action recorded so far, for the filter's choices."""
    return list(db.session.scalars(sa.select(AuditEvent.action).distinct().order_by("action")))


def write_csv(filters: Filters, out: t.TextIO) -> int:
    """The matching events as CSV, oldest last as on the page; cells spreadsheet-safe."""
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    count = 0
    for e in db.session.scalars(query(filters).execution_options(yield_per=1000)):
        writer.writerow(
            [
                e.id,
                csv_time(e.at),
                *(
                    spreadsheet_safe(v)
                    for v in (e.actor, e.actor_id, e.source, e.ip, e.action, e.target, e.detail)
                ),
            ]
        )
        count += 1
    return count


def pick(values: t.Mapping[str, str], keys: t.Iterable[str]) -> dict[str, str]:
    """The named fields of a posted form that are short and one line (the rest dropped), as
    a detail: which status, which outcome, whom assigned, never the free text."""
    return {
        k: values[k]
        for k in keys
        if values.get(k) and len(values[k]) <= MAX_DETAIL_VALUE and is_one_line(values[k])
    }


def exported(what: str, **detail: str | int | bool | None) -> None:
    """Record that ``what`` was exported (by whoever runs the command or the page) and
    commit: called once the data is out."""
    record(f"export.{what}", detail={k: v for k, v in detail.items() if v not in (None, False)})
    db.session.commit()
