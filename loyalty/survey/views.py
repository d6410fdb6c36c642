"""The public survey: ``/s/<token>`` to answer, ``/u/<token>`` to unsubscribe.

Opening a page never stores anything, because mail scanners open every link; only a
POST does. Unknown, expired and malformed tokens all get the same page and status, so
the answer reveals nothing about which tokens exist.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import RequestEntityTooLarge

from .. import storage
from ..accounts.services import unsubscribe as unsubscribe_contact
from ..db import db
from ..i18n import format_date
from ..i18n import text as ui_text
from ..metrics import SCALES
from ..models import Answer, Contact, Invitation, Response, link_is_open, utcnow
from ..outreach.invitations import TOKEN_PATTERN, contact_for_unsubscribe, find_open, hash_token
from ..specs import Question, SurveySpec, surveys
from .forms import form_class, form_token, form_token_ok
from .misses import refuse_if_guessing
from .responses import save_first, save_response

if t.TYPE_CHECKING:
    from flask import Flask
    from flask_wtf import FlaskForm
    from werkzeug.local import LocalProxy

bp = Blueprint("survey", __name__)


@bp.after_request
def _not_stored(response: t.Any) -> t.Any:
    """A survey page holds a customer's answers and their link: no cache may keep a copy."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _survey_and_language(survey_id: str, contact_language: str) -> tuple[SurveySpec, str]:
    survey = surveys(current_app)[survey_id]
    return survey, contact_language if contact_language in survey.languages else survey.languages[0]


def get_invitation_or_404(token: str) -> Invitation:
    invitation = find_open(token)
    if invitation is None:
        refuse_if_guessing()
        abort(404)
    return invitation


# --- reading a link without the ORM --------------------------------------------------------

_invitations, _contacts = Invitation.__table__, Contact.__table__
_responses, _answers = Response.__table__, Answer.__table__

#: All the survey page needs of an invitation, in one round trip of plain columns: pages are
#: opened far more often than answered, and loading ORM objects costs more than the query.
_LINK_QUERY = (
    sa.select(
        _invitations.c.id.label("invitation_id"),
        _invitations.c.contact_id,
        _contacts.c.account_id,
        _invitations.c.survey,
        _invitations.c.status,
        _invitations.c.expires_at,
        _contacts.c.language,
        _responses.c.id.label("response_id"),
        _responses.c.complete,
        *(_responses.c[metric] for metric in SCALES),
    )
    .join(_contacts, _contacts.c.id == _invitations.c.contact_id)
    .outerjoin(_responses, _responses.c.invitation_id == _invitations.c.id)
    .where(
        _invitations.c.token_hash == sa.bindparam("token_hash"),
        # Unsubscribed means unsubscribed: the link opens nothing any more.
        _contacts.c.unsubscribed_at.is_(None),
        _contacts.c.erased_at.is_(None),
    )
)
_ANSWERS_QUERY = sa.select(_answers.c.question, _answers.c.text, _answers.c.number).where(
    _answers.c.response_id == sa.bindparam("response_id")
)


#: The same for a save: on PostgreSQL, saves of one link queue on its invitation row, so each
#: reads the answer stored before it. SQLite writes one at a time: a save that read before
#: another's commit fails on the unique invitation (or a stale snapshot) and is retried.
_LINK_QUERY_TO_SAVE = _LINK_QUERY.with_for_update(of=_invitations)


def _open_link(token: str, *, to_save: bool = False) -> sa.Row | None:
    """What :func:`find_open` finds, as a row of columns (locked ``to_save``: PostgreSQL)."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    query = _LINK_QUERY_TO_SAVE if to_save else _LINK_QUERY
    # On the session's connection: Session.execute costs more than this one query.
    row = db.session.connection().execute(query, {"token_hash": hash_token(token)}).first()
    if row is None or not link_is_open(row.status, row.expires_at):
        return None
    return row


def _open_link_or_404(token: str, *, to_save: bool = False) -> sa.Row:
    row = _open_link(token, to_save=to_save)
    if row is None:
        refuse_if_guessing()
        abort(404)
    return row


# --- the page ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Page:
    """The invitation as the survey page shows it, whether read as a row or as ORM objects."""

    survey: SurveySpec
    language: str
    expires_at: dt.datetime
    #: something is stored: a complete answer, or only a score tapped in the email
    has_response: bool
    #: a complete answer is stored
    answered: bool

    @classmethod
    def from_row(cls, row: sa.Row) -> _Page:
        survey, language = _survey_and_language(row.survey, row.language)
        has_response = row.response_id is not None
        answered = has_response and bool(row.complete)
        return cls(survey, language, row.expires_at, has_response, answered)


def _render(
    token: str,
    page: _Page,
    values: t.Mapping[str, t.Any],
    errors: t.Mapping[str, list[str]] | None = None,
    *,
    status: int = 200,
    notice: str = "",
    preview: bool = False,
):
    """The survey page from plain values and errors: a GET builds no WTForms form at all."""
    errors = errors or {}
    survey, language = page.survey, page.language
    question = survey.email_question
    save_partial = question is not None and not page.has_response and bool(values.get(question.id))
    return (
        render_template(
            "survey/respond.html",
            survey=survey,
            questions=_questions_html(page, values, errors),
            errors=errors,
            language=language,
            company=current_app.config["COMPANY_NAME"],
            answered=page.answered,
            notice=notice,
            save_partial=save_partial,
            partial_seconds=current_app.config["PARTIAL_SAVE_SECONDS"],
            expires=format_date(page.expires_at, language),
            form_token="" if preview else form_token(token),
            preview=preview,
        ),
        status,
    )


def preview(survey: SurveySpec, language: str):
    """The page a customer sees on opening a new link, for an admin to check a definition;
    it has no token, so nothing can be sent from it."""
    expires = utcnow() + dt.timedelta(days=int(current_app.config["INVITATION_DAYS"]))
    return _render("", _Page(survey, language, expires, False, False), {}, preview=True)


def _questions_html(
    page: _Page, values: t.Mapping[str, t.Any], errors: t.Mapping[str, list[str]]
) -> list[Markup]:
    """Each question of the form, from ``survey/_question.html``.

    Rendering the questions is most of the page's rendering time, yet without errors and
    without text the customer typed a question looks the same for everyone who gets this
    survey in this language and picked the same score. Such HTML is rendered once per worker
    and reused; only those values are keys, so the cache stays small (a few dozen entries
    per survey) and never holds a customer's words. The CSRF token is not in it.
    """
    app = t.cast("LocalProxy[Flask]", current_app)._get_current_object()
    company, max_length = app.config["COMPANY_NAME"], app.config["COMMENT_MAX_LENGTH"]
    # In development templates reload when edited; so must their HTML.
    cache: dict[tuple[t.Any, ...], Markup] | None = (
        None if app.jinja_env.auto_reload else app.extensions.setdefault(_HTML_CACHE, {})
    )
    blocks = []
    for q in page.survey.questions:
        value, field_errors = values.get(q.id), errors.get(q.id, [])
        shown = None if value is None or value == "" else str(value)
        key = (page.survey.id, page.survey.version, page.language, q.id, shown, company, max_length)
        reusable = cache is not None and not field_errors and _same_for_everyone(q, shown)
        store = cache if reusable else None
        html = store.get(key) if store is not None else None
        if html is None:
            html = Markup(
                render_template(
                    "survey/_question.html",
                    q=q,
                    value=value,
                    field_errors=field_errors,
                    language=page.language,
                    company=company,
                    max_length=max_length,
                )
            )
            if store is not None:
                store[key] = html
        blocks.append(html)
    return blocks


_HTML_CACHE = "loyalty.survey_question_html"


def _same_for_everyone(q: Question, shown: str | None) -> bool:
    """True for no answer and for a score on the question's scale; never for typed text."""
    return shown is None or (q.kind == "scale" and shown in {str(n) for n in q.choices})


def _form(page: _Page) -> FlaskForm:
    return form_class(page.survey, page.language, current_app.config["COMMENT_MAX_LENGTH"])()


def _stored_values(row: sa.Row, survey: SurveySpec) -> dict[str, t.Any]:
    """What the customer answered before, to fill the form when they come back."""
    if row.response_id is None:
        return {}
    answers = {
        a.question: a
        for a in db.session.connection().execute(_ANSWERS_QUERY, {"response_id": row.response_id})
    }
    values: dict[str, t.Any] = {}
    for q in survey.questions:
        if q.metric:
            value = getattr(row, q.metric)
        elif q.id in answers:
            value = answers[q.id].text if q.kind == "text" else answers[q.id].number
        else:
            value = None
        if value is not None:
            values[q.id] = str(value) if q.kind == "scale" else value
    return values


@bp.get("/s/<token>")
def respond(token: str):
    """Show the survey, filled with earlier answers or the score tapped in the email."""
    row = _open_link_or_404(token)
    page = _Page.from_row(row)
    survey = page.survey
    values = _stored_values(row, survey)
    question = survey.email_question
    tapped = request.args.get(question.id, "") if question else ""
    if question and tapped.isdigit() and int(tapped) in question.choices:
        values[question.id] = tapped
    return _render(token, page, values)


@bp.post("/s/<token>")
def submit(token: str):
    """Store the answers, or show the form again with what is wrong, in the customer's words."""
    row = _link_to_save(token)
    page = _Page.from_row(row)
    survey, language = page.survey, page.language
    if request.mimetype not in _FORM_TYPES:
        # A browser posts the form encoded; anything else (JSON above all, which WTForms
        # would read too) is refused rather than guessed at.
        return render_template(
            "survey/error.html",
            language=language,
            message=ui_text("error_bad_request", language),
            back=url_for("survey.respond", token=token),
        ), 415
    try:
        # Read the body now, so an oversized one is handled here; keep the raw bytes for
        # the UTF-8 check before the form parser sees them.
        request.get_data(cache=True)
        request.form  # noqa: B018
    except RequestEntityTooLarge:
        return render_template(
            "survey/error.html",
            language=language,
            message=ui_text("error_too_large", language),
            back=url_for("survey.respond", token=token),
        ), 413
    form = _form(page)
    valid = form.validate()
    for name in _undecodable_fields():
        if name in form:
            form[name].errors = [*form[name].errors, ui_text("error_unreadable", language)]
            valid = False
    values = {q.id: form[q.id].data for q in survey.questions}
    forged = not form_token_ok(token, request.form.get("csrf_token"))
    if forged or not valid:
        errors = {q.id: form[q.id].errors for q in survey.questions if form[q.id].errors}
        notice = ui_text("error_form_check", language) if forged else ""
        return _render(token, page, values, errors, status=400 if forged else 422, notice=notice)
    try:
        _save(token, row, survey, values, complete=True)
    except DBAPIError as exc:
        if not storage.is_refusal(exc):
            raise
        # Nothing is stored (rolled back): the form again, filled, and a moment's patience.
        db.session.rollback()
        storage.note_refusal()
        page = _Page.from_row(_open_link_or_404(token))
        html, status = _render(
            token, page, values, status=503, notice=ui_text("error_storage", language)
        )
        return html, status, storage.retry_after()
    return redirect(url_for("survey.thanks", token=token), code=303)


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _link_to_save(token: str) -> sa.Row:
    """The link, read for a save: on PostgreSQL locked, so saves of one link queue on its
    row and each reads the answer stored before it.

    A database refusing writes refuses the lock too; the link is then read unlocked, and the
    save meets the refusal where the customer gets the page that keeps what they typed."""
    if db.session.get_bind().dialect.name == "sqlite":
        return _open_link_or_404(token)
    try:
        return _open_link_or_404(token, to_save=True)
    except DBAPIError as exc:
        if not storage.is_refusal(exc):
            raise
        db.session.rollback()
        return _open_link_or_404(token)


def _save(
    token: str,
    row: sa.Row,
    survey: SurveySpec,
    values: t.Mapping[str, t.Any],
    *,
    complete: bool,
) -> None:
    """Store the answer and commit, whoever else is saving this link at the moment.

    ``row`` is the link as :func:`_link_to_save` read it. Two first submits of one link at
    once (a double tap, a browser's retry, the page's partial save beside the button) both
    find no response and both insert one; the unique invitation lets one commit and makes
    the other fail. The loser rolls back and is saved again as an edit of the winner's
    answer, as if it had come a moment later: the same success for both, one response
    stored.
    """
    try:
        if row.response_id is None:
            save_first(row, survey, values, complete=complete)
        else:
            invitation = db.session.get(Invitation, row.invitation_id)
            assert invitation is not None  # read a moment ago, locked where rows lock
            save_response(invitation, survey, values, complete=complete)
        db.session.commit()
    except (IntegrityError, OperationalError) as exc:
        db.session.rollback()
        if storage.is_refusal(exc):  # a full or read-only disk: no retry will do
            raise
        if db.session.get_bind().dialect.name != "sqlite":
            _open_link_or_404(token, to_save=True)
        save_response(get_invitation_or_404(token), survey, values, complete=complete)
        db.session.commit()


def _undecodable_fields() -> list[str]:
    """Fields of a URL-encoded body whose bytes are not UTF-8.

    Werkzeug leaves such a value percent-encoded instead of failing, which would store
    ``%FF`` as if the customer had typed it; multipart bodies arrive with U+FFFD instead,
    which the text check catches.
    """
    if request.mimetype != "application/x-www-form-urlencoded":
        return []
    bad = []
    for pair in request.get_data(cache=True).split(b"&"):
        name, _, value = pair.partition(b"=")
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            bad.append(unquote_to_bytes(name).decode("utf-8", "replace"))
    return bad


@bp.post("/s/<token>/partial")
def save_partial(token: str):
    """Keep the score tapped in the email once a person has had the page in view.

    Called by the page's script, with the form's token bound to the link (no cookie)."""
    row = _link_to_save(token)
    if not form_token_ok(token, request.form.get("csrf_token")):
        abort(400)
    survey = _Page.from_row(row).survey
    question = survey.email_question
    raw = request.form.get(question.id, "") if question else ""
    whole = raw.isascii() and raw.isdigit() and len(raw) <= 2
    if question is None or request.mimetype not in _FORM_TYPES or not whole:
        abort(422)
    if int(raw) not in question.choices:
        abort(422)
    try:
        _save(token, row, survey, {question.id: int(raw)}, complete=False)
    except DBAPIError as exc:
        if not storage.is_refusal(exc):
            raise
        db.session.rollback()
        storage.note_refusal()
        return "", 503, storage.retry_after()  # the page keeps the score; the button sends it
    return "", 204


@bp.get("/s/<token>/thanks")
def thanks(token: str):
    """Thank the customer and tell them how long they can change their answers."""
    page = _Page.from_row(_open_link_or_404(token))
    return render_template(
        "survey/thanks.html",
        language=page.language,
        survey=page.survey,
        token=token,
        expires=format_date(page.expires_at, page.language),
    )


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    """Ask before unsubscribing (scanners follow links); a POST, one-click included, does it."""
    contact = contact_for_unsubscribe(token)
    if contact is None:
        refuse_if_guessing()
        abort(404)
    if request.method == "POST":
        unsubscribe_contact(contact)
        db.session.commit()
        done = True
    else:
        done = contact.unsubscribed_at is not None
    return render_template(
        "survey/unsubscribe.html", contact=contact, language=contact.language, done=done
    )
