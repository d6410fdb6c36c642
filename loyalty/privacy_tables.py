"""The record of privacy requests served: an access export or an erasure, for which
contact, when, by whom, and (for an erasure) what was erased where, as counts. It is the
erasure receipt: it holds no personal data, only the contact's number. Re-exported by
:mod:`loyalty.models`."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Model
from .models import User, UTCDateTime, _choice, utcnow

PRIVACY_KINDS = ("export", "erase")


class PrivacyRequest(Model):
    __tablename__ = "privacy_requests"
    __table_args__ = (_choice("kind", PRIVACY_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    done_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the staff member who served it; empty when it was a command
    done_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: "admin" (the page), "command" or "retention" (the dispatcher's pass)
    via: Mapped[str] = mapped_column(sa.String(16))
    #: JSON object: what was found or erased, per place, as counts
    counts: Mapped[str] = mapped_column(sa.Text)

    done_by: Mapped[User | None] = relationship()
