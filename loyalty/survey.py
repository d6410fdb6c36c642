"""The public survey: ``/s/<token>`` to answer, ``/u/<token>`` to unsubscribe.

Opening a page never stores anything, because mail scanners open every link; only a
POST does. Unknown, expired and malformed tokens all get the same page and status, so
the answer reveals nothing about which tokens exist.
"""

from __future__ import annotations

import typing as t
from urllib.parse import unquote_to_bytes

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from .db import db
from .i18n import best_language, format_date
from .i18n import text as ui_text
from .invitations import contact_for_unsubscribe, find_open
from .models import Invitation, utcnow
from .responses import save_response
from .surveys import Survey, form_class

if t.TYPE_CHECKING:
    from flask_wtf import FlaskForm

bp = Blueprint("survey", __name__)


def _survey_for(invitation: Invitation) -> tuple[Survey, str]:
    survey = current_app.extensions["loyalty.surveys"][invitation.survey]
    language = invitation.contact.language
    return survey, language if language in survey.languages else survey.languages[0]


def get_invitation_or_404(token: str) -> Invitation:
    invitation = find_open(token)
    if invitation is None:
        abort(404)
    return invitation


def _render(
    invitation: Invitation,
    values: t.Mapping[str, t.Any],
    errors: t.Mapping[str, list[str]] | None = None,
    *,
    status: int = 200,
    notice: str = "",
):
    """The survey page from plain values and errors: a GET builds no WTForms form at all."""
    survey, language = _survey_for(invitation)
    answered = invitation.response is not None and invitation.response.complete
    question = survey.email_question
    save_partial = (
        question is not None and invitation.response is None and bool(values.get(question.id))
    )
    return (
        render_template(
            "survey/respond.html",
            survey=survey,
            values=values,
            errors=errors or {},
            language=language,
            company=current_app.config["COMPANY_NAME"],
            answered=answered,
            notice=notice,
            save_partial=save_partial,
            partial_seconds=current_app.config["PARTIAL_SAVE_SECONDS"],
            max_length=current_app.config["COMMENT_MAX_LENGTH"],
            expires=format_date(invitation.expires_at, language),
        ),
        status,
    )


def _form(invitation: Invitation) -> FlaskForm:
    survey, language = _survey_for(invitation)
    return form_class(survey, language, current_app.config["COMMENT_MAX_LENGTH"])()


def _stored_values(invitation: Invitation, survey: Survey) -> dict[str, t.Any]:
    """What the customer answered before, to fill the form when they come back."""
    response = invitation.response
    if response is None:
        return {}
    answers = {a.question: a for a in response.answers}
    values: dict[str, t.Any] = {}
    for q in survey.questions:
        if q.metric:
            value = getattr(response, q.metric)
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
    invitation = get_invitation_or_404(token)
    survey, _ = _survey_for(invitation)
    values = _stored_values(invitation, survey)
    question = survey.email_question
    tapped = request.args.get(question.id, "") if question else ""
    if question and tapped.isdigit() and int(tapped) in question.choices:
        values[question.id] = tapped
    return _render(invitation, values)


@bp.post("/s/<token>")
def submit(token: str):
    """Store the answers, or show the form again with what is wrong, in the customer's words."""
    invitation = get_invitation_or_404(token)
    survey, language = _survey_for(invitation)
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
    form = _form(invitation)
    valid = form.validate()
    for name in _undecodable_fields():
        if name in form:
            form[name].errors = [*form[name].errors, ui_text("error_unreadable", language)]
            valid = False
    values = {q.id: form[q.id].data for q in survey.questions}
    if not valid:
        errors = {q.id: form[q.id].errors for q in survey.questions if form[q.id].errors}
        notice = ui_text("error_expired_form", language) if form.csrf_token.errors else ""
        return _render(invitation, values, errors, status=400 if notice else 422, notice=notice)
    save_response(invitation, survey, values, complete=True)
    db.session.commit()
    return redirect(url_for("survey.thanks", token=token), code=303)


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

    Called by the page's script; CSRF is checked by the app-wide protection."""
    invitation = get_invitation_or_404(token)
    survey, _ = _survey_for(invitation)
    question = survey.email_question
    raw = request.form.get(question.id, "") if question else ""
    if not raw.isdigit() or int(raw) not in question.choices:
        abort(422)
    save_response(invitation, survey, {question.id: int(raw)}, complete=False)
    db.session.commit()
    return "", 204


@bp.get("/s/<token>/thanks")
def thanks(token: str):
    """Thank the customer and tell them how long they can change their answers."""
    invitation = get_invitation_or_404(token)
    survey, language = _survey_for(invitation)
    return render_template(
        "survey/thanks.html",
        language=language,
        survey=survey,
        token=token,
        expires=format_date(invitation.expires_at, language),
    )


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    """Ask before unsubscribing (scanners follow links); a POST, one-click included, does it."""
    contact = contact_for_unsubscribe(token)
    if contact is None:
        abort(404)
    if request.method == "POST":
        if contact.unsubscribed_at is None:
            contact.unsubscribed_at = utcnow()
            db.session.commit()
        done = True
    else:
        done = contact.unsubscribed_at is not None
    return render_template(
        "survey/unsubscribe.html", contact=contact, language=contact.language, done=done
    )


def not_found_page(error: Exception):
    """The one friendly page for every link that does not open a survey."""
    language = best_language(request.accept_languages)
    return render_template("survey/not_found.html", language=language), 404
