"""Every e-mail Loyalty sends, composed in one place from ``templates/email/``.

Callers decide *whether* to send and *to whom*; this module decides what the message says
and how it is built (always through :func:`loyalty.mailer.build_message`, which cleans every
header), and :func:`transport` is the one way to the configured mail server. The survey
invitation and its reminder, the severe-case alert, the daily digest and the reply to a
customer are the four messages today, beside the health warning, the scheduled report and
a staff user's set-password link.
"""

from __future__ import annotations

import typing as t

from flask import current_app, render_template

from . import periods
from .i18n import format_date
from .i18n import text as ui_text
from .mailer import Transport, build_message, transport_from_url
from .outreach.invitations import survey_url, unsubscribe_url
from .specs import surveys
from .triage.flags import severity_name

if t.TYPE_CHECKING:
    from email.message import EmailMessage
    from zoneinfo import ZoneInfo

    from .dashboard.queries import Summary
    from .metrics import Reading
    from .models import Account, Case, Contact, HealthWarning, Invitation, User
    from .specs import ReportSpec


def transport() -> Transport:
    """The transport ``MAIL_URL`` names: SMTP, or ``.eml`` files in the outbox folder."""
    return transport_from_url(current_app.config["MAIL_URL"], current_app.instance_path)


def _in(language: str) -> t.Callable[..., str]:
    """The ``_()`` of a template rendered in ``language``, whatever the request's is."""
    return lambda key, **values: ui_text(key, language, **values)


def invitation(invitation: Invitation, *, reminder: bool = False) -> EmailMessage:
    """The invitation (or its reminder) in the contact's language: text and HTML with
    score buttons; a reminder carries the very same links."""
    survey = surveys(current_app)[invitation.survey]
    contact = invitation.contact
    language = contact.language if contact.language in survey.languages else survey.languages[0]
    company = current_app.config["COMPANY_NAME"]
    question = survey.email_question
    unsubscribe = unsubscribe_url(contact)
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
        unsubscribe_link=unsubscribe,
        expires=format_date(invitation.expires_at, language),
        intro=ui_text(
            "reminder_intro" if reminder else "email_intro",
            language,
            name=contact.name,
            company=company,
        ),
        _=_in(language),
    )
    subject = survey.email_subject[language].format(company=company)
    return build_message(
        sender=current_app.config["MAIL_FROM"],
        to_name=contact.name,
        to_email=contact.email,
        subject=ui_text("reminder_subject", language, subject=subject) if reminder else subject,
        text=render_template("email/invitation.txt", **context),
        html=render_template("email/invitation.html", **context),
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Content-Language": language,
        },
    )


def case_url(case: Case) -> str:
    """A link to the case page, from ``BASE_URL`` like every link in an email."""
    return f"{current_app.config['BASE_URL']}/triage/{case.id}"


def case_assigned(case: Case) -> EmailMessage:
    """The email to a severe case's assignee: what was said, why it is flagged, the link."""
    assignee = case.assignee
    if assignee is None:
        raise ValueError(f"case {case.id} has no assignee to email")
    flags = sorted(case.flags, key=lambda f: f.id)
    context = dict(case=case, flags=flags, url=case_url(case), severity=severity_name)
    subject = (
        f"[{severity_name(case.severity)}] Case #{case.id}: {case.account.name}"
        f" — {', '.join(r.replace('_', ' ') for r in flags[-1].rules.split(',') if r)}"
    )
    return build_message(
        sender=current_app.config["MAIL_FROM"],
        to_name="",
        to_email=assignee.email,
        subject=subject,
        text=render_template("email/case_assigned.txt", **context),
        html=render_template("email/case_assigned.html", **context),
    )


def digest(
    user: User,
    *,
    new: list[Case],
    overdue: list[Case],
    new_total: int,
    overdue_total: int,
    tz: ZoneInfo,
    warnings: t.Sequence[tuple[HealthWarning, list[str]]] = (),
) -> EmailMessage:
    """A staff member's daily digest: the first cases of each list, and the full counts; the
    quieter health warnings of the accounts they own."""
    context = dict(
        warnings=warnings,
        warning_names=WARNING_NAMES,
        account_url=account_url,
        user=user,
        new=new,
        overdue=overdue,
        new_total=new_total,
        overdue_total=overdue_total,
        queue_url=f"{current_app.config['BASE_URL']}/triage",
        case_url=case_url,
        severity=severity_name,
        local=lambda moment: periods.local_text(moment, tz),
    )
    return build_message(
        sender=current_app.config["MAIL_FROM"],
        to_name="",
        to_email=user.email,
        subject=f"Loyalty digest: {new_total} new, {overdue_total} overdue cases",
        text=render_template("email/digest.txt", **context),
        html=render_template("email/digest.html", **context),
    )


def case_reply(actor: User, contact: Contact, body: str) -> EmailMessage:
    """A support lead's reply in the contact's language, text and HTML, answering to them."""
    language = contact.language
    company = current_app.config["COMPANY_NAME"]
    context = dict(language=language, contact=contact, company=company, body=body, _=_in(language))
    return build_message(
        sender=current_app.config["MAIL_FROM"],
        to_name=contact.name,
        to_email=contact.email,
        subject=ui_text("case_reply_subject", language, company=company),
        text=render_template("email/case_reply.txt", **context),
        html=render_template("email/case_reply.html", **context),
        headers={"Reply-To": actor.email, "Content-Language": language},
    )


def set_password(user: User, url: str, *, invited_by: User | None, reset: bool) -> EmailMessage:
    """The link a new staff user sets their password with (or a reset's, sent by an admin):
    who sent it, and until when it works."""
    hours = int(current_app.config["SET_PASSWORD_HOURS"])
    company = current_app.config["COMPANY_NAME"]
    context = dict(
        user=user, url=url, invited_by=invited_by, reset=reset, hours=hours, company=company
    )
    subject = (
        f"Set a new password for Loyalty at {company}"
        if reset
        else f"You are invited to Loyalty at {company}"
    )
    return build_message(
        sender=current_app.config["MAIL_FROM"],
        to_name="",
        to_email=user.email,
        subject=subject,
        text=render_template("email/set_password.txt", **context),
        html=render_template("email/set_password.html", **context),
    )


#: How a warning's kind reads in an email and on the account page.
WARNING_NAMES = {
    "at_risk": "health at risk",
    "falling": "health falling fast",
    "churn_cue": "someone wrote of leaving",
    "silent": "gone silent",
}


def account_url(account: Account) -> str:
    return f"{current_app.config['BASE_URL']}/accounts/{account.id}"


def health_warning(
    warning: HealthWarning, account: Account, owner: User, reasons: list[str]
) -> EmailMessage:
    """The early warning to an account's owner: what slid, why in words, the link."""
    kind_name = WARNING_NAMES.get(warning.kind, warning.kind)
    context = dict(
        warning=warning,
        account=account,
        reasons=reasons,
        kind_name=kind_name,
        url=account_url(account),
    )
    return build_message(
        sender=current_app.config["MAIL_FROM"],
        to_name="",
        to_email=owner.email,
        subject=f"[{kind_name}] {account.name}: health {warning.score}",
        text=render_template("email/health_warning.txt", **context),
        html=render_template("email/health_warning.html", **context),
    )


def _reading(reading: Reading, language: str = "en") -> str:
    """An NPS as the summary says it: +23.4 ± 8.1, or why there is none to read."""
    if reading.value is None:
        return ui_text("reading_none", language)
    margin = f" ± {reading.moe:.1f}" if reading.moe is not None else ""
    few = f"; {ui_text('reading_few', language)}" if reading.low_confidence else ""
    return f"{reading.value:+.1f}{margin}{few}"


def change_words(summary: Summary, language: str) -> str:
    """Whether the NPS moved beyond the noise, in words of ``language``: the words of
    :func:`loyalty.metrics.compare`, from the same comparison."""
    c = summary.comparison
    if c.change is None:
        return ui_text("change_none", language)
    if c.noise is None:
        return ui_text("change_unknown", language)
    amount = f"{abs(c.change):.1f}"
    kind = "change_rose" if c.change > 0 else "change_fell" if c.change < 0 else "change_flat"
    direction = ui_text(kind, language, amount=amount) if c.change else ui_text(kind, language)
    verdict = ui_text("change_real" if c.beyond_noise else "change_noise", language,
                      noise=f"{c.noise:.1f}")  # fmt: skip
    if summary.now.low_confidence or summary.then.low_confidence:
        verdict += f"; {ui_text('reading_few', language)}"
    return f"{direction}, {verdict}"


def scheduled_report(
    user: User, spec: ReportSpec, language: str, summary: Summary, html: str
) -> EmailMessage:
    """A scheduled report: the NPS summary in the body, the self-contained HTML attached."""
    title = spec.title[language]
    filename = f"{spec.id}-{summary.period.first.isoformat()}.html"
    context = dict(
        title=title,
        s=summary,
        reading=lambda reading: _reading(reading, language),
        change=change_words(summary, language),
        t=lambda key, **values: ui_text(key, language, **values),
        lang=language,
        filename=filename,
        dashboard_url=f"{current_app.config['BASE_URL']}/dashboard",
    )
    message = build_message(
        sender=current_app.config["MAIL_FROM"],
        to_name="",
        to_email=user.email,
        subject=f"{title}: NPS {_reading(summary.now, language)} ("
        + ui_text(
            "report_period",
            language,
            title="",
            first=summary.period.first.isoformat(),
            last=summary.period.last.isoformat(),
        ).removeprefix(", ")
        + ")",  # fmt: skip
        text=render_template("email/scheduled_report.txt", **context),
        html=render_template("email/scheduled_report.html", **context),
    )
    message.add_attachment(html.encode("utf-8"), maintype="text", subtype="html", filename=filename)
    return message
