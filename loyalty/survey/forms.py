"""A survey spec becomes a FlaskForm subclass at run time (WTForms' dynamic composition).

The validators say, in the customer's language, what is wrong with an answer; they are the
only place a survey answer is checked, for the page and for the scores tapped in an email.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import typing as t

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import Field, StringField, TextAreaField
from wtforms.validators import ValidationError

from ..checks import typed_length
from ..i18n import text as ui_text
from ..specs import Question, SurveySpec

_WHOLE = re.compile(r"[0-9]{1,2}")


class _ScaleAnswer:
    """Checks a tapped number is a whole number on the question's scale."""

    def __init__(self, question: Question, language: str) -> None:
        self.question, self.language = question, language

    def __call__(self, form: FlaskForm, field: Field) -> None:
        raw = field.raw_data[0] if field.raw_data else ""
        if raw in ("", None):
            field.data = None
            if self.question.required:
                raise ValidationError(ui_text("error_required", self.language))
            return
        # A whole number written as one, in ASCII digits: not "5.9", "+5", " 5" or "٥".
        value = int(raw) if isinstance(raw, str) and _WHOLE.fullmatch(raw) else None
        if value is None or value not in self.question.choices:
            q = self.question
            raise ValidationError(ui_text("error_scale", self.language, min=q.min, max=q.max))
        field.data = value


class _TextAnswer:
    """Rejects what cannot be a customer's text: too long, NUL bytes, undecodable bytes."""

    def __init__(self, question: Question, language: str, max_length: int) -> None:
        self.question, self.language, self.max_length = question, language, max_length

    def __call__(self, form: FlaskForm, field: Field) -> None:
        value = (field.data or "").strip()
        field.data = value or None
        if not value:
            if self.question.required:
                raise ValidationError(ui_text("error_required", self.language))
            return
        length = typed_length(value)  # as the comment box's maxlength counts
        if length > self.max_length:
            raise ValidationError(
                ui_text("error_too_long", self.language, max=self.max_length, n=length)
            )
        if "\x00" in value or "\ufffd" in value:
            raise ValidationError(ui_text("error_unreadable", self.language))


def form_token(link_token: str) -> str:
    """The survey form's anti-forgery token, bound to the invitation instead of a session.

    The survey link is the customer's credential, and a customer whose browser blocks
    cookies has no session to bind a token to: an HMAC of the link token under the app's
    secret key proves the post came from a page the app served for this link, with no
    cookie at all. Staff pages keep Flask-WTF's session-bound tokens.
    """
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    message = b"loyalty.survey-form\x00" + link_token.encode("utf-8", "surrogateescape")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def form_token_ok(link_token: str, sent: str | None) -> bool:
    """Whether ``sent`` is this link's form token (compared in constant time)."""
    if not sent or not sent.isascii():
        return False
    return hmac.compare_digest(sent.encode(), form_token(link_token).encode())


class _NoSessionCsrf:
    """Survey forms check :func:`form_token` in the view, never the session's token."""

    csrf = False


@functools.cache
def form_class(survey: SurveySpec, language: str, max_length: int) -> type[FlaskForm]:
    """A FlaskForm subclass for one survey in one language (built once, then reused)."""
    fields: dict[str, t.Any] = {"Meta": _NoSessionCsrf}
    for q in survey.questions:
        if q.kind == "scale":
            # Rendered as a radio group by the template; a plain field keeps the checking ours.
            fields[q.id] = StringField(q.text[language], validators=[_ScaleAnswer(q, language)])
        else:
            fields[q.id] = TextAreaField(
                q.text[language], validators=[_TextAnswer(q, language, max_length)]
            )
    return type(f"{survey.id}-{language}", (FlaskForm,), fields)
