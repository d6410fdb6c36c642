"""The comments that weighed most: the period's most negative written answers, as a chart of
their sentiment with the words themselves as its labels, and as a table.

What a detractor wrote says more to an executive than a score does. Comments are customer
text: escaped in every label and hover (:func:`charts.label`) and in the table (Jinja).
Read through the (polarity) index, lowest first, so a year of comments is not sorted for
the few shown.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa
from flask import url_for

from .. import periods
from ..db import db
from ..models import Account, Answer, Flag, Response
from . import charts, queries

#: how many comments the chart shows
SHOWN = 8
#: the length of a comment in a bar's label; the hover and the table hold more
LABEL_CHARS = 36
HOVER_CHARS = 240
#: the answers read at first, lowest polarity first (each batch after is twice as many),
#: and how many first batches' worth are walked before one query over the period does it
WALK = 200
WALK_BATCHES = 20


@dataclass(frozen=True)
class Comment:
    """One written answer, with whose it is and where to read it in full."""

    response_id: int
    account_id: int
    account: str
    submitted_at: dt.datetime
    nps: int | None
    polarity: float
    text: str
    case_id: int | None

    def link(self, tz: dt.tzinfo) -> str:
        """Its case if it is flagged, else the answers of its account that (local) day."""
        if self.case_id is not None:
            return url_for("triage.case", case_id=self.case_id)
        day = self.submitted_at.astimezone(tz).date().isoformat()
        args = {"account": self.account_id, "from": day, "to": day}
        return url_for("responses.index", **t.cast(dict[str, t.Any], args))


def excerpt(text: str, length: int) -> str:
    """The first ``length`` characters of ``text`` on one line, an ellipsis if cut."""
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= length else line[: length - 1].rstrip() + "…"


def most_negative(
    period: periods.Period, filters: queries.Filters, tz: dt.tzinfo, *, limit: int = SHOWN
) -> list[Comment]:
    """The ``limit`` scored comments of ``period`` with the lowest polarity (negative ones
    only), lowest first; narrowed by every filter of the dashboard."""
    start, end = period.bounds(tz)
    conditions = [Response.submitted_at >= start, Response.submitted_at < end]
    for name in ("language", "survey"):
        value = getattr(filters, name)
        if value is not None:
            conditions.append(getattr(Response, name) == value)
    if filters.segment is not None:
        conditions.append(Account.segment == filters.segment)
    if filters.owner_id is not None:
        owner = filters.owner_id
        conditions.append(Account.owner_id.is_(None) if owner == 0 else Account.owner_id == owner)
    if filters.account_id is not None:
        conditions.append(Response.account_id == filters.account_id)

    negative = Answer.polarity < 0

    def read(*bounds: t.Any, limit: int, batch: bool = True) -> list[t.Any]:
        """The comments among the answers within ``bounds`` (a batch of the walk, or with
        ``batch=False`` every negative answer), lowest polarity first."""
        answers = sa.select(Answer.id, Answer.response_id, Answer.polarity, Answer.text).where(
            Answer.text.is_not(None), *bounds
        )
        # On SQLite a batch's range of the index is read first and then joined: given the
        # joins at once, it would rather scan the period by its time index, which for a
        # narrow filter meant reading a year of answers (1.5 s at a million) to find eight.
        # PostgreSQL's planner already walks the index and stops at the limit.
        walked = (
            answers.cte("walked").prefix_with("MATERIALIZED")
            if batch and db.session.get_bind().dialect.name == "sqlite"
            else answers.subquery("walked")
        )
        return list(
            db.session.execute(
                sa.select(
                    Response.id,
                    Response.account_id,
                    Account.name,
                    Response.submitted_at,
                    Response.nps,
                    walked.c.polarity,
                    walked.c.text,
                    Flag.case_id,
                )  # fmt: skip
                .select_from(walked)
                .join(Response, walked.c.response_id == Response.id)
                .join(Account, Account.id == Response.account_id)
                .outerjoin(Flag, Flag.response_id == Response.id)
                .where(*conditions)
                .order_by(walked.c.polarity, walked.c.id)
                .limit(limit)
            )
        )

    # Walk the polarity index, lowest first, a batch of answers at a time, and keep those
    # the filters let through: a narrow filter would otherwise have the database read the
    # period's every answer to sort them. Each batch is twice the one before (a narrow
    # filter needs few round trips), found by its last answer alone and read as a range of
    # the index, so no list of ids goes back and forth; past WALK * WALK_BATCHES answers
    # walked, one query does it all. The rows are the same whatever the batches: each
    # range is read in order, and the ranges follow each other.
    rows: list[t.Any] = []
    order = sa.tuple_(Answer.polarity, Answer.id)
    after: tuple[float, int] | None = None
    cap = WALK * WALK_BATCHES
    size, walked = WALK, 0
    while walked < cap:
        size = min(size, cap - walked)
        # (each row bound spelled on the polarity alone too, for its index; one upper bound
        # on the polarity only, as SQLite's index search takes just one of them)
        since = () if after is None else (order > after, Answer.polarity >= after[0])
        walk = sa.select(Answer.polarity, Answer.id).where(negative, *since)
        last = db.session.execute(
            walk.order_by(Answer.polarity, Answer.id).offset(size - 1).limit(1)
        ).first()
        if last is None:  # fewer than a batch left: the rest of the way
            rows += read(negative, *since, limit=limit - len(rows))
            break
        edge = (t.cast(float, last[0]), last[1])  # a negative polarity: the upper bound
        within = (order <= edge, Answer.polarity <= edge[0])
        rows += read(*since, *within, limit=limit - len(rows))
        walked += size
        after = edge
        if len(rows) >= limit:
            break
        size *= 2
    else:
        rows = read(negative, limit=limit, batch=False)
    return [
        Comment(response_id, account_id, account, at, nps, polarity or 0.0, text or "", case_id)
        for response_id, account_id, account, at, nps, polarity, text, case_id in rows[:limit]
    ]


def chart(comments: t.Sequence[Comment], tz: dt.tzinfo) -> dict[str, t.Any]:
    """One bar per comment, its polarity (−1…0), labelled with its opening words; hovering
    shows more of it, whose it is and when; clicking opens it."""
    bars = [
        charts.Bar(
            excerpt(c.text, LABEL_CHARS),
            round(c.polarity, 2),
            f"{c.account}, {c.submitted_at.astimezone(tz):%Y-%m-%d}"
            + ("" if c.nps is None else f", NPS {c.nps}")
            + f": {excerpt(c.text, HOVER_CHARS)}",
            c.link(tz),
        )
        for c in comments
    ]
    return charts.bar_chart(bars, axis_title="sentiment of the comment", value_format="{:+.2f}")
