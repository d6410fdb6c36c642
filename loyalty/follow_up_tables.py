"""The follow-up outbox: what is still to be done about a stored answer. Re-exported by
:mod:`loyalty.models`, which holds every other model."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .db import Model
from .models import UTCDateTime, utcnow


class FollowUp(Model):
    """One answer's follow-ups (flag and case, webhooks, rollups, health), still to do.

    Written in the transaction that stores the answer, so it is committed with the answer
    or not at all; removed in the transaction that does the follow-ups, so they are done
    once (``loyalty.survey.follow_ups``). A row that failed waits for ``next_attempt_at``;
    none is ever given up on.
    """

    __tablename__ = "follow_ups"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: no foreign key: an answer erased before its follow-up ran leaves a row that is
    #: simply removed, and the erasure need not know about this table
    response_id: Mapped[int] = mapped_column(index=True)
    #: the save created the response (its first save), so "response.created" is announced
    created: Mapped[bool] = mapped_column(default=False)
    #: when the answer was saved: the follow-ups' "now" (a case's SLA clock starts then)
    saved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True, default=utcnow)
    #: the last time a worker took it (its transaction ended without removing it: failed)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
