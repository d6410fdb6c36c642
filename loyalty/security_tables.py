"""The tables of security: the audit log and the failed sign-ins. Re-exported by
:mod:`loyalty.models`, which holds every other model."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column

from .db import Model
from .models import UTCDateTime, utcnow


class AuditEvent(Model):
    """One security-relevant event: who (a staff user, a command's operator, or nobody
    signed in), from where (the client address of a web request), did what to what.

    Append-only: the ORM refuses to change or delete a row, and so does the database (a
    trigger, migration 5b2e7c91d0a4), so an admin with the app's own access cannot quietly
    edit the trail. ``detail`` holds a few plain fields, never a password, a token, a key, a
    secret or text a customer wrote (``audit.record`` refuses those keys).
    """

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True, default=utcnow)
    #: the staff user who acted (or tried to: a failed sign-in of a known address)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: who as text at the time: the staff email, ``cli:<operator>``, or ``anonymous``
    actor: Mapped[str] = mapped_column(sa.String(254))
    #: web, api or cli
    source: Mapped[str] = mapped_column(sa.String(8))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    #: what, dotted: ``sign_in.failed``, ``case.resolve``, ``export.responses``, ...
    action: Mapped[str] = mapped_column(sa.String(64))
    #: to what: ``case:12``, ``user:3``, ``api_key:2``, ``webhook:5``
    target: Mapped[str | None] = mapped_column(sa.String(128))
    #: a few plain fields as JSON (never secrets nor customer text)
    detail: Mapped[str | None] = mapped_column(sa.Text)


class SignInFailure(Model):
    """A failed sign-in, counted by the typed address (keyed hash: unknown addresses count
    the same as real ones) and by client address, in the database so that every worker and
    every app server sees the same count. Rows older than the lock window are deleted."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (sa.Index("ix_sign_in_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``addr:<hint>`` or ``ip:<client address>``
    key: Mapped[str] = mapped_column(sa.String(80))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True, default=utcnow)


class AppendOnlyError(RuntimeError):
    """An attempt to change or delete an audit event."""


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(mapper: object, connection: object, target: AuditEvent) -> None:
    raise AppendOnlyError("the audit log is append-only")
