"""Sending invitations that are due, each at most once.

An invitation is claimed (``scheduled`` -> ``sending``) in its own committed update
before its email goes out, so a second dispatcher or a restarted one never sends it
again; a failed delivery goes back to ``scheduled`` with a growing delay until the
last attempt, after which it is ``failed`` with the server's answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, render_template
from flask.signals import Namespace

from .db import db
from .i18n import format_date
from .i18n import text as ui_text
from .invitations import survey_url, unsubscribe_url
from .mailer import MailError, Transport, build_message, transport_from_url
from .models import Invitation, utcnow

#: Sent after every dispatch pass (``flask dispatch`` and each turn of its loop), so other
#: periodic work (digests, webhook retries) runs wherever the dispatcher runs.
dispatch_tick = Namespace().signal("dispatch-tick")

MAX_ATTEMPTS = 4
RETRY_DELAYS = (dt.timedelta(minutes=5), dt.timedelta(minutes=30), dt.timedelta(hours=2))


@dataclass
class DispatchResult:
    sent: int = 0
    skipped: int = 0
    retrying: int = 0
    failed: int = 0


def transport() -> Transport:
    return transport_from_url(current_app.config["MAIL_URL"], current_app.instance_path)


def invitation_message(invitation: Invitation):
    """The invitation email in the contact's language: text and HTML with score buttons."""
    survey = current_app.extensions["loyalty.surveys"][invitation.survey]
    contact = invitation.contact
    language = contact.language if contact.language in survey.languages else survey.languages[0]
    company = current_app.config["COMPANY_NAME"]
    question = survey.email_question
    context = dict(
        language=language,
        survey=survey,
        contact=contact,
        company=company,
        question=question,
        score_links=[(n, survey_url(invitation, **{question.id: n})) for n in question.choices]
        if question
        else [],
        survey_link=survey_url(invitation),
        unsubscribe_link=unsubscribe_url(contact),
        expires=format_date(invitation.expires_at, language),
        _=lambda key, **values: ui_text(key, language, **values),
    )
    unsubscribe = context["unsubscribe_link"]
    return build_message(
        sender=current_app.config["MAIL_FROM"],
        to_name=contact.name,
        to_email=contact.email,
        subject=survey.email_subject[language].format(company=company),
        text=render_template("email/invitation.txt", **context),
        html=render_template("email/invitation.html", **context),
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Content-Language": language,
        },
    )


def _claim(invitation_id: int) -> bool:
    """Take one invitation for this process; False when another process already has."""
    claimed = db.session.execute(
        sa.update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.status == "scheduled")
        .values(status="sending", attempts=Invitation.attempts + 1)
    ).rowcount
    db.session.commit()
    return claimed == 1


def send_due(*, now: dt.datetime | None = None, mail: Transport | None = None) -> DispatchResult:
    """Send every invitation that is due now; returns what happened to them."""
    now = now or utcnow()
    mail = mail or transport()
    result = DispatchResult()
    due_ids = db.session.scalars(
        sa.select(Invitation.id)
        .where(Invitation.status == "scheduled", Invitation.due_at <= now)
        .order_by(Invitation.due_at, Invitation.id)
    ).all()
    for invitation_id in due_ids:
        if not _claim(invitation_id):
            continue
        invitation = db.session.get(Invitation, invitation_id)
        if not invitation.contact.reachable:
            invitation.status = "skipped"
            invitation.skip_reason = invitation.contact.unreachable_reason
            result.skipped += 1
        elif now >= invitation.expires_at:
            invitation.status, invitation.skip_reason = "skipped", "expired"
            result.skipped += 1
        else:
            try:
                mail.send(invitation_message(invitation))
            except MailError as exc:
                invitation.last_error = str(exc)[:2000]
                if invitation.attempts >= MAX_ATTEMPTS:
                    invitation.status = "failed"
                    result.failed += 1
                else:
                    invitation.status = "scheduled"
                    invitation.due_at = now + RETRY_DELAYS[invitation.attempts - 1]
                    result.retrying += 1
            else:
                invitation.status, invitation.sent_at = "sent", now
                result.sent += 1
        db.session.commit()
    dispatch_tick.send(current_app._get_current_object(), now=now)
    return result
