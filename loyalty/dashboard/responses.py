"""The staff list of the latest responses (``/responses``) and the responses CSV export."""

from __future__ import annotations

import csv
import typing as t

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, render_template, request
from sqlalchemy.orm import selectinload

from .. import periods
from ..auth import role_required
from ..checks import spreadsheet_safe
from ..db import db
from ..models import READ_ROLES, Account, Answer, Contact, Response
from ..periods import PeriodError
from ..specs import surveys, themes
from ..survey.responses import stored_themes, theme_filter
from ..triage.settings import settings
from .queries import DEFAULT_DAYS, FilterError, parse_filters

bp = Blueprint("responses", __name__)
#: 50 a page: a million pages is fifty million responses, past any offset worth asking for.
MAX_PAGE = 1_000_000


@bp.get("/responses")
@role_required(*READ_ROLES)
def index():
    """The latest responses with their comments, newest first."""
    page = request.args.get("page", 1, type=int)
    if not 1 <= page <= MAX_PAGE:  # a page beyond any offset a database takes is empty
        abort(404)
    query = (
        sa.select(Response)
        .options(
            selectinload(Response.answers),
            selectinload(Response.contact),
            selectinload(Response.account),
        )
        .order_by(Response.submitted_at.desc(), Response.id.desc())
    )
    status, message, narrowed = 200, None, False
    try:
        query, narrowed = _narrowed(query, request.args)
    except (PeriodError, FilterError) as exc:
        status, message = 400, str(exc)
    pagination = db.paginate(query, page=page, per_page=50, error_out=False)
    # Staff read comments under the question they answer, in English.
    questions = {
        (survey.id, q.id): q.text["en" if "en" in q.text else survey.languages[0]].format(
            company=current_app.config["COMPANY_NAME"]
        )
        for survey in surveys(current_app).values()
        for q in survey.questions
    }
    return render_template(
        "responses/index.html",
        pagination=pagination,
        questions=questions,
        message=message,
        narrowed=narrowed,
        args=request.args,
        keep={k: v for k, v in request.args.items() if k != "page" and v},
        answer_themes=stored_themes,
        theme_label=themes(current_app).label,
    ), status


def _narrowed(query: sa.Select, args: t.Mapping[str, str]) -> tuple[sa.Select, bool]:
    """The responses a dashboard point stands for: its days (``from``/``to``, local days)
    and the dashboard's filters (``segment``, ``language``, ``survey``, ``owner``); and what
    the comments are about: ``theme`` (an id of forms/themes.toml) and ``sentiment`` (of
    that theme's mention, else of the comment)."""
    keys: tuple[str, ...] = ("from", "to", "segment", "language", "survey", "owner", "account")
    keys += ("theme", "sentiment")
    if not any(args.get(key) for key in keys):
        return query, False
    tz = settings().calendar.tz
    if args.get("from") or args.get("to"):
        period = periods.parse(args, today=periods.today(tz), default_days=DEFAULT_DAYS)
        start, end = period.bounds(tz)
        query = query.where(Response.submitted_at >= start, Response.submitted_at < end)
    filters = parse_filters(args)
    if filters.segment or filters.owner_id is not None:
        query = query.join(Account, Account.id == Response.account_id)
    if filters.segment:
        query = query.where(Account.segment == filters.segment)
    if filters.owner_id is not None:
        owner = None if filters.owner_id == 0 else filters.owner_id
        query = query.where(
            Account.owner_id.is_(None) if owner is None else Account.owner_id == owner
        )
    if filters.account_id is not None:
        query = query.where(Response.account_id == filters.account_id)
    if filters.language:
        query = query.where(Response.language == filters.language)
    if filters.survey:
        query = query.where(Response.survey == filters.survey)
    theme, label = _theme_filters(args)
    if theme is not None:
        query = query.where(Response.answers.any(theme_filter(theme, label)))
    elif label is not None:
        query = query.where(Response.answers.any(Answer.sentiment == label))
    return query, True


SENTIMENTS = ("negative", "neutral", "positive")


def _theme_filters(args: t.Mapping[str, str]) -> tuple[str | None, str | None]:
    theme = (args.get("theme") or "").strip() or None
    label = (args.get("sentiment") or "").strip() or None
    ids = themes(current_app).ids
    if theme is not None and theme not in ids:
        raise FilterError(f"theme: must be one of {', '.join(ids)}")
    if label is not None and label not in SENTIMENTS:
        raise FilterError(f"sentiment: must be one of {', '.join(SENTIMENTS)}")
    return theme, label


def export_rows() -> t.Iterator[list[t.Any]]:
    """Every response as a CSV row, header first; comments with polarity and label."""
    text_questions = sorted(
        {
            q.id
            for survey in surveys(current_app).values()
            for q in survey.questions
            if q.kind == "text"
        }
    )
    header = ["account", "contact_email", "survey", "survey_version", "submitted_at"]
    header += ["nps", "csat", "ces"]
    for qid in text_questions:
        header += [qid, f"{qid}_polarity", f"{qid}_sentiment", f"{qid}_themes"]
    yield header
    query = (
        sa.select(Response, Account.name, Contact.email)
        .join(Account, Response.account_id == Account.id)
        .join(Contact, Response.contact_id == Contact.id)
        .options(selectinload(Response.answers))
        .order_by(Response.submitted_at, Response.id)
        .execution_options(yield_per=500)
    )
    for response, account, email in db.session.execute(query):
        answers = {a.question: a for a in response.answers}
        row = [account, email, response.survey, response.survey_version]
        row += [periods.csv_time(response.submitted_at), response.nps, response.csat, response.ces]
        for qid in text_questions:
            answer = answers.get(qid)
            if answer is None:
                row += ["", "", "", ""]
                continue
            row += [answer.text, answer.polarity, answer.sentiment, _themes_cell(answer)]
        yield [spreadsheet_safe(v) for v in row]


def _themes_cell(answer: Answer) -> str:
    """``billing:negative:-0.72 quality:positive:0.29``: one cell a spreadsheet can filter."""
    return " ".join(
        f"{th['id']}:{th.get('sentiment', '')}:{th.get('polarity', '')}"
        for th in stored_themes(answer)
    )


def write_csv(out: t.TextIO) -> None:
    csv.writer(out).writerows(export_rows())
