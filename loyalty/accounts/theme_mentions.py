"""What an account's customers talk about, and what drives its detractors (issue 12).

For one account's answers of a period: each theme with its mentions, its negative mentions,
its share of all negative mentions, and how many of those came with a detractor's score.
Read from the themes stored with each answer, so the page shows what was scored then.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from ..db import db
from ..metrics import DETRACTOR_MAX
from ..models import Answer, Response
from ..sentiment import ThemeBook
from ..survey.responses import parse_themes

#: the period the account page reads, in days up to now
DAYS = 365


@dataclass(frozen=True)
class ThemeShare:
    id: str
    label: str
    mentions: int
    negative: int
    #: this theme's negative mentions / all negative mentions of the account (0 with none)
    share: float
    #: negative mentions that came with an NPS of a detractor (0-6)
    from_detractors: int


def theme_shares(
    account_id: int, book: ThemeBook, *, now: dt.datetime, days: int = DAYS
) -> list[ThemeShare]:
    """The account's themes, most negative mentions first (then most mentions)."""
    rows = db.session.execute(
        sa.select(Answer.themes, Response.nps)
        .join(Response, Response.id == Answer.response_id)
        .where(
            Response.account_id == account_id,
            Response.submitted_at >= now - dt.timedelta(days=days),
            Answer.themes.is_not(None),
        )
    )
    mentions: dict[str, int] = {}
    negative: dict[str, int] = {}
    detractors: dict[str, int] = {}
    for themes, nps in rows:
        for theme in parse_themes(themes):
            key = theme["id"]
            mentions[key] = mentions.get(key, 0) + 1
            if theme.get("sentiment") == "negative":
                negative[key] = negative.get(key, 0) + 1
                if nps is not None and nps <= DETRACTOR_MAX:
                    detractors[key] = detractors.get(key, 0) + 1
    total = sum(negative.values())
    shares = [
        ThemeShare(
            key,
            book.label(key),
            count,
            negative.get(key, 0),
            negative.get(key, 0) / total if total else 0.0,
            detractors.get(key, 0),
        )
        for key, count in mentions.items()
    ]
    shares.sort(key=lambda s: (-s.negative, -s.mentions, s.id))
    return shares
