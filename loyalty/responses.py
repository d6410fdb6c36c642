"""Storing survey answers (scored as they arrive), listing them for staff, exporting CSV."""

from __future__ import annotations

import csv
import datetime as dt
import typing as t

import sqlalchemy as sa
from flask import Blueprint, current_app, render_template, request
from flask.signals import Namespace
from sqlalchemy.orm import selectinload

from . import sentiment
from .auth import role_required
from .db import db
from .models import Account, Answer, Contact, Invitation, Response, utcnow

if t.TYPE_CHECKING:
    from .surveys import Survey

bp = Blueprint("responses", __name__)

#: Sent inside the saving transaction with ``response=`` and ``created=`` (first save of
#: this response), so receivers (flags and cases, webhooks) add their rows atomically.
response_saved = Namespace().signal("response-saved")


def save_response(
    invitation: Invitation,
    survey: Survey,
    values: t.Mapping[str, t.Any],
    *,
    complete: bool,
    now: dt.datetime | None = None,
) -> Response:
    """Create or update the invitation's response from validated ``values``.

    A partial save (a score tapped in the email) never overwrites a complete answer.
    Each free-text answer is scored here, so every stored comment has a sentiment.
    """
    response = invitation.response
    now = now or utcnow()
    created = response is None
    if response is None:
        response = Response(
            invitation=invitation,
            contact_id=invitation.contact_id,
            account_id=invitation.contact.account_id,
            survey=survey.id,
            submitted_at=now,
        )
        db.session.add(response)
    elif response.complete and not complete:
        return response
    response.survey_version = survey.version
    response.language = invitation.contact.language
    response.complete = complete
    response.updated_at = now
    answers = {a.question: a for a in response.answers}
    for question in survey.questions:
        if question.id not in values:
            continue
        value = values[question.id]
        if question.metric:
            setattr(response, question.metric, value)
            continue
        answer = answers.get(question.id)
        if value is None:
            if answer is not None:
                response.answers.remove(answer)
            continue
        if answer is None:
            answer = Answer(question=question.id)
            response.answers.append(answer)
        if question.kind == "text":
            if answer.text != value or answer.scorer_version != sentiment.SCORER_VERSION:
                answer.text = value
                apply_sentiment(answer, sentiment.score(value, response.language))
        else:
            answer.number = value
    invitation.answered_at = now if complete else invitation.answered_at
    db.session.flush()
    response_saved.send(
        current_app._get_current_object(), response=response, created=created, now=now
    )
    return response


def apply_sentiment(answer: Answer, result: sentiment.Sentiment) -> None:
    answer.polarity = round(result.polarity, 4)
    answer.sentiment = result.label
    answer.sentiment_language = result.language
    answer.cues = ",".join(result.cues) or None
    answer.scorer_version = result.version


def _outdated_answers() -> sa.Select:
    return sa.select(Answer).where(
        Answer.text.is_not(None),
        sa.or_(Answer.scorer_version.is_(None), Answer.scorer_version < sentiment.SCORER_VERSION),
    )


def count_outdated() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(_outdated_answers().subquery()))


def rescore_outdated(*, batch_size: int = 500, progress: t.Callable[[int], t.Any] = print) -> int:
    """Rescore answers scored by an older scorer, committing batch by batch.

    Each batch is committed on its own, and only outdated answers are selected, so an
    interrupted run simply continues where it stopped when started again.
    """
    done = 0
    language = sa.select(Response.language).where(Response.id == Answer.response_id)
    while True:
        batch = db.session.execute(
            _outdated_answers()
            .add_columns(language.scalar_subquery())
            .order_by(Answer.id)
            .limit(batch_size)
        ).all()
        if not batch:
            return done
        for answer, response_language in batch:
            apply_sentiment(answer, sentiment.score(answer.text, response_language))
        db.session.commit()
        done += len(batch)
        progress(len(batch))


@bp.get("/responses")
@role_required("admin", "support", "executive")
def index():
    """The latest responses with their comments, newest first."""
    page = request.args.get("page", 1, type=int)
    query = (
        sa.select(Response)
        .options(
            selectinload(Response.answers),
            selectinload(Response.contact),
            selectinload(Response.account),
        )
        .order_by(Response.submitted_at.desc(), Response.id.desc())
    )
    pagination = db.paginate(query, page=page, per_page=50, error_out=False)
    # Staff read comments under the question they answer, in English.
    questions = {
        (survey.id, q.id): q.text["en" if "en" in q.text else survey.languages[0]].format(
            company=current_app.config["COMPANY_NAME"]
        )
        for survey in current_app.extensions["loyalty.surveys"].values()
        for q in survey.questions
    }
    return render_template("responses/index.html", pagination=pagination, questions=questions)


# --- CSV export ------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(value: t.Any) -> t.Any:
    """Neutralise text a spreadsheet would run as a formula (OWASP CSV injection advice)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_rows() -> t.Iterator[list[t.Any]]:
    """Every response as a CSV row, header first; comments with polarity and label."""
    text_questions = sorted(
        {
            q.id
            for survey in current_app.extensions["loyalty.surveys"].values()
            for q in survey.questions
            if q.kind == "text"
        }
    )
    header = ["account", "contact_email", "survey", "survey_version", "submitted_at"]
    header += ["nps", "csat", "ces"]
    for qid in text_questions:
        header += [qid, f"{qid}_polarity", f"{qid}_sentiment"]
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
        row += [response.submitted_at.isoformat(), response.nps, response.csat, response.ces]
        for qid in text_questions:
            answer = answers.get(qid)
            row += [answer.text, answer.polarity, answer.sentiment] if answer else ["", "", ""]
        yield [spreadsheet_safe(v) for v in row]


def write_csv(out: t.TextIO) -> None:
    csv.writer(out).writerows(export_rows())
