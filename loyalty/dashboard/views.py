"""``/dashboard``: the page executives open every Monday, honest about noise.

Every trend comes from :mod:`.queries` (the rollups, never the raw responses), each point
with its n and margin of error; points with too few answers are drawn hollow, and the
period's NPS is compared with the period before in words that say whether the change is
beyond the noise. The filters live in the URL, so a view can be shared as a link; every
chart has its numbers in a table below it; clicking a point opens the answers behind it.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, render_template, request, url_for

from .. import metrics, periods
from ..accounts.listing import revenue_at_risk
from ..auth import role_required
from ..db import db
from ..models import HEALTH_BANDS, READ_ROLES, Account, Answer, Flag, Response, User
from ..specs import REPORT_LANGUAGES, reports, surveys
from . import charts, comments, health_trends, queries, rollups, sla
from . import reports as rendering

bp = Blueprint("dashboard", __name__)

#: The trends the page shows, in order: (metric, the value range of its axis).
PANELS: tuple[tuple[str, tuple[float, float] | None], ...] = (
    ("nps", (-100, 100)),
    ("csat", (0, 100)),
    ("ces", (1, 7)),
    ("response_rate", (0, 100)),
    ("negative_share", (0, 100)),
)
LATEST_FLAGGED = 8
_DAY = dt.timedelta(days=1)
#: What Werkzeug leaves unescaped in a query string (``werkzeug.urls._urlencode``).
_URL_SAFE = "!$'()*,/:;?@"


class Panel(t.NamedTuple):
    metric: str
    title: str
    unit: str
    #: (line name, its points): one line, or one per value of the split
    lines: list[tuple[str, list[queries.Point]]]
    figure: t.Any

    @property
    def buckets(self) -> list[tuple[str, list[metrics.Reading]]]:
        """The table's rows: each bucket's name and its reading on every line."""
        names = [p.name for p in self.lines[0][1]] if self.lines else []
        return [
            (name, [points[i].reading for _, points in self.lines]) for i, name in enumerate(names)
        ]


#: What the trends may be split by, as the URL says it: the column of the rollups.
SPLITS = {"segment": "segment", "language": "language", "survey": "survey", "owner": "owner_id"}


def _linker(
    grain: str, period: periods.Period, filters: queries.Filters
) -> t.Callable[[queries.Point], str]:
    """The answers behind a point: the responses of its bucket (cut at the period's ends).
    The URL ``url_for`` builds (the same arguments in the same order, encoded as Werkzeug
    encodes them), with its path and filters built once for the many points of a page."""
    base = url_for("responses.index")
    rest = urlencode(list(filters.args().items()), safe=_URL_SAFE)

    def link(point: queries.Point) -> str:
        first = max(point.start, period.first)
        last = min(periods.next_bucket(point.start, grain), period.last + _DAY) - _DAY
        query = f"from={first.isoformat()}&to={last.isoformat()}"
        return f"{base}?{query}&{rest}" if rest else f"{base}?{query}"

    return link


@bp.get("/dashboard")
@role_required(*READ_ROLES)
def index():
    """Loyalty trends for a period, grain and filters, with the noise shown."""
    tz = rollups.tz()
    today = periods.today(tz)
    status, message = 200, None
    try:
        grain = periods.parse_grain(request.args.get("grain"))
        period = periods.parse(request.args, today=today, default_days=queries.DEFAULT_DAYS)
        filters = queries.parse_filters(request.args)
        split = _split(request.args.get("split"))
    except (periods.PeriodError, queries.FilterError) as exc:
        status, message = 400, str(exc)
        grain, split = "month", None
        period = periods.parse({}, today=today, default_days=queries.DEFAULT_DAYS)
        filters = queries.Filters()
    rollups.refresh_stale()
    min_n = current_app.config["MIN_N"]

    # Plain rows, not users: the health rollup's refresh commits before the page is drawn,
    # and a commit would make every user of the filter list load again, one query each.
    owners = db.session.execute(sa.select(User.id, User.email).order_by(User.email)).all()
    emails = {u.id: u.email for u in owners}
    column = SPLITS[split] if split else None
    days = queries.day_counts(period, filters, column)  # read once, for every panel
    sums = queries.bucket_sums(days, grain)  # and summed per bucket once
    panels = []
    for metric, value_range in PANELS:
        title, unit = metrics.NAMED[metric]
        trend = queries.trend(metric, grain, period, filters, split=column, min_n=min_n, sums=sums)
        lines = [
            (title if column is None else rendering.series_name(column, key, emails), points)
            for key, points in trend.items()
        ]
        figure = charts.trend_chart(
            [(name, _chart_points(points, grain, period, filters)) for name, points in lines],
            unit=unit,
            value_range=value_range,
            min_n=min_n,
        )
        panels.append(Panel(metric, title, unit, lines, charts.figure_json(figure)))

    before = queries.previous(period)
    # A total sums every day's counts, whatever the split: the same days serve it.
    now_nps = queries.total("nps", period, filters, min_n=min_n, days=days)
    then_nps = queries.total("nps", before, filters, min_n=min_n)
    cases = sla.trend(grain, period, filters, tz)
    health = health_trends.band_trend(grain, period, filters, tz)
    fell, rose = health_trends.movers(period, filters, tz)
    weighed = comments.most_negative(period, filters, tz)
    return render_template(
        "dashboard/index.html",
        panels=panels,
        period=period,
        before=before,
        grain=grain,
        grains=periods.GRAINS,
        filters=filters,
        now_nps=now_nps,
        comparison=metrics.compare(then_nps, now_nps),
        min_n=min_n,
        split=split,
        splits=SPLITS,
        account=None if filters.account_id is None else db.session.get(Account, filters.account_id),
        cases=cases,
        hours_chart=charts.figure_json(sla.hours_chart(cases, min_n=min_n)),
        share_chart=charts.figure_json(sla.share_chart(cases, min_n=min_n)),
        health=health,
        band_chart=charts.figure_json(health_trends.band_chart(health)),
        risk_chart=charts.figure_json(health_trends.risk_chart(health)),
        band_names=health_trends.BAND_NAMES,
        fell=fell,
        rose=rose,
        movers_chart=charts.figure_json(health_trends.movers_chart(fell, rose)),
        comments=weighed,
        tz=tz,
        comments_chart=charts.figure_json(comments.chart(weighed, tz)),
        bands=_bands(),
        at_risk=revenue_at_risk(),
        flagged=_latest_flagged(),
        owners=owners,
        survey_ids=sorted(surveys(current_app)),
        message=message,
    ), status


def _split(value: str | None) -> str | None:
    """The ``split`` argument: empty for none, else a key of :data:`SPLITS`."""
    value = (value or "").strip()
    if not value:
        return None
    if value not in SPLITS:
        raise queries.FilterError(f"split: must be one of {', '.join(SPLITS)}, or empty")
    return value


def _chart_points(
    points: list[queries.Point], grain: str, period: periods.Period, filters: queries.Filters
) -> list[charts.TrendPoint]:
    link = _linker(grain, period, filters)
    return [charts.TrendPoint.of(p.start, p.reading, p.name, link(p)) for p in points]


def _bands() -> dict[str, int]:
    """Live accounts per health band today."""
    counts = dict.fromkeys(HEALTH_BANDS, 0)
    query = (
        sa.select(Account.health_band, sa.func.count(Account.id))
        .where(Account.churned_at.is_(None), Account.health_band.is_not(None))
        .group_by(Account.health_band)
    )
    for band, count in db.session.execute(query):
        counts[str(band)] = count
    return counts


def _latest_flagged() -> list[t.Any]:
    """The latest flagged answers with their comments, newest first. The latest flags are
    chosen from the flags alone, then joined: flags raised in the same moment (a batch of
    answers) are ordered by id without joining every one of them first. Each flag has its
    answer and account, so the latest rows come from those flags: the same rows as
    ordering the joined rows would give."""
    latest = (
        sa.select(Flag.id, Flag.response_id, Flag.created_at)
        .order_by(Flag.created_at.desc(), Flag.id.desc())
        .limit(LATEST_FLAGGED)
        .subquery()
    )
    query = (
        sa.select(Response.id, Response.submitted_at, Response.nps, Account.name, Answer.text)
        .join(latest, latest.c.response_id == Response.id)
        .join(Account, Account.id == Response.account_id)
        .outerjoin(
            Answer,
            sa.and_(Answer.response_id == Response.id, Answer.text.is_not(None), Answer.text != ""),
        )
        .order_by(latest.c.created_at.desc(), latest.c.id.desc())
        .limit(LATEST_FLAGGED)  # a flagged answer with two comments is two rows
    )
    return list(db.session.execute(query).all())


@bp.get("/reports/<name>")
@role_required(*READ_ROLES)
def report(name: str):
    """One report of ``reports/``, for a period (its own by default), in English or Danish."""
    spec = reports(current_app).get(name)
    if spec is None:
        abort(404)
    language = request.args.get("lang", "en")
    language = language if language in REPORT_LANGUAGES else "en"
    today = periods.today(rollups.tz())
    try:
        period = periods.parse(request.args, today=today, default_days=spec.days)
    except periods.PeriodError as exc:
        return render_template("error.html", message=str(exc)), 400
    return rendering.render_html(spec, period, language=language, standalone=False)
