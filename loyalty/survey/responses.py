"""Storing survey answers, each comment scored for sentiment as it arrives.

:func:`save_first` stores the first answer to a link in plain INSERTs (most saves, and the
ones under load: the customer waits for them); :func:`save_response` creates or edits through
the ORM (a changed answer, a score tapped in the email then completed, the demo). Both write
the same columns (:func:`answer_columns`) and send ``response_saved`` inside the saving
transaction, so the reminder is called off and the follow-up outbox row (flag, case,
webhooks, rollups: see :mod:`.follow_ups`) is stored with the answer or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t

import sqlalchemy as sa
from flask import current_app

from .. import sentiment, specs
from ..db import db
from ..models import ERASED_TEXT, Answer, Invitation, Response, utcnow
from ..signals import response_saved

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.local import LocalProxy

    from ..specs import SurveySpec


def save_response(
    invitation: Invitation,
    survey: SurveySpec,
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
        outdated = answer.scorer_version != sentiment.SCORER_VERSION
        if question.kind != "text" or answer.text != value or outdated:
            for name, column_value in answer_columns(question, value, response.language).items():
                setattr(answer, name, column_value)
    db.session.flush()
    _saved(response.id, invitation.id, created=created, complete=complete, now=now)
    return response


class Link(t.Protocol):
    """What :func:`save_first` needs to know of the link's invitation (a row will do)."""

    invitation_id: int
    contact_id: int
    account_id: int
    language: str  # the contact's


_responses = t.cast(sa.Table, Response.__table__)
_answers = t.cast(sa.Table, Answer.__table__)


def save_first(
    link: Link,
    survey: SurveySpec,
    values: t.Mapping[str, t.Any],
    *,
    complete: bool,
    now: dt.datetime | None = None,
) -> int:
    """Store the first answer to a link that has none yet, in plain INSERTs; its id.

    The ORM's unit of work cost a submit more than all else (``profile_submit.py``); a first
    answer needs none of it: there is nothing to compare with. If another save of the link
    got there first, the unique invitation fails this INSERT and the caller saves again as an
    edit (:func:`save_response`).
    """
    now = now or utcnow()
    columns: dict[str, t.Any] = {
        "invitation_id": link.invitation_id,
        "contact_id": link.contact_id,
        "account_id": link.account_id,
        "survey": survey.id,
        "survey_version": survey.version,
        "language": link.language,
        "complete": complete,
        "submitted_at": now,
        "updated_at": now,
    }
    answers = []
    for question in survey.questions:
        value = values.get(question.id)
        if value is None:
            continue
        if question.metric:
            columns[question.metric] = value
        else:
            answers.append(
                {**_NO_ANSWER, "question": question.id}
                | answer_columns(question, value, link.language)
            )
    connection = db.session.connection()
    inserted = connection.execute(_INSERT_RESPONSE, columns).inserted_primary_key
    assert inserted is not None  # an INSERT of one row
    response_id: int = inserted[0]
    if answers:
        connection.execute(_INSERT_ANSWER, [{**a, "response_id": response_id} for a in answers])
    _saved(response_id, link.invitation_id, created=True, complete=complete, now=now)
    return response_id


# Built once: building a statement costs about as much as running it.
_INSERT_RESPONSE, _INSERT_ANSWER = sa.insert(_responses), sa.insert(_answers)
#: every column of an answer row, so that the rows of one INSERT have the same keys
_NO_ANSWER: dict[str, t.Any] = {
    "number": None,
    "text": None,
    "polarity": None,
    "sentiment": None,
    "sentiment_language": None,
    "cues": None,
    "themes": None,
    "scorer_version": None,
}


def answer_columns(question: specs.Question, value: t.Any, language: str | None) -> dict:
    """The columns an answer to ``question`` is stored in: a number, or a text with its
    sentiment (scored here, so every stored comment has one)."""
    if question.kind != "text":
        return {"number": value}
    return {"text": value, **sentiment_columns(score_comment(value, language))}


def _saved(
    response_id: int, invitation_id: int | None, *, created: bool, complete: bool, now: dt.datetime
) -> None:
    app = t.cast("LocalProxy[Flask]", current_app)._get_current_object()
    response_saved.send(
        app,
        response_id=response_id,
        invitation_id=invitation_id,
        created=created,
        complete=complete,
        now=now,
    )


def score_comment(text: str | None, language: str | None) -> sentiment.Sentiment:
    """Score a comment with the app's own theme definitions (``forms/themes.toml``)."""
    return sentiment.score(text, language, specs.themes(current_app))


def sentiment_columns(result: sentiment.Sentiment) -> dict[str, t.Any]:
    return {
        "polarity": round(result.polarity, 4),
        "sentiment": result.label,
        "sentiment_language": result.language,
        "cues": ",".join(result.cues) or None,
        "themes": themes_json(result.themes),
        "scorer_version": result.version,
    }


def apply_sentiment(answer: Answer, result: sentiment.Sentiment) -> None:
    for name, value in sentiment_columns(result).items():
        setattr(answer, name, value)


# --- the stored themes -------------------------------------------------------------------
# One JSON text column, written in one fixed shape so a theme and its sentiment can be
# found with a LIKE that works the same on SQLite and PostgreSQL (``theme_filter``).


def themes_json(themes: t.Sequence[sentiment.Theme]) -> str | None:
    if not themes:
        return None
    return json.dumps(
        [
            {
                "id": th.id,
                "sentiment": th.label,
                "polarity": th.polarity,
                "words": list(th.words),
                "evidence": list(th.evidence),
            }
            for th in themes
        ],
        ensure_ascii=False,
    )


def stored_themes(answer: Answer) -> list[dict[str, t.Any]]:
    """An answer's themes as stored; an unreadable value reads as none."""
    return parse_themes(answer.themes)


def parse_themes(value: str | None) -> list[dict[str, t.Any]]:
    try:
        data = json.loads(value) if value else []
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]


def theme_filter(theme: str, label: str | None = None) -> sa.ColumnElement[bool]:
    """Answers with a mention of ``theme`` (of that sentiment, when given)."""
    needle = json.dumps({"id": theme, "sentiment": label or ""})
    # Without a sentiment the text ends after the id; with one it stays open for "polarity".
    needle = needle[: needle.index(', "sentiment"')] if label is None else needle[:-1]
    return Answer.themes.contains(needle, autoescape=True)


def _outdated_answers() -> sa.Select:
    return sa.select(Answer).where(
        Answer.text.is_not(None),
        Answer.text != ERASED_TEXT,  # its score stays what it was
        sa.or_(Answer.scorer_version.is_(None), Answer.scorer_version < sentiment.SCORER_VERSION),
    )


def count_outdated() -> int:
    count = sa.select(sa.func.count()).select_from(_outdated_answers().subquery())
    return db.session.execute(count).scalar_one()


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
            apply_sentiment(answer, score_comment(answer.text, response_language))
        db.session.commit()
        done += len(batch)
        progress(len(batch))
