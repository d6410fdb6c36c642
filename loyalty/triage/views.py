"""The support leads' pages: the queue (``/triage``) and the case page (``/triage/<id>``).

Every action is a plain form POST (CSRF-checked app-wide) that redirects back to the case,
so the page works without JavaScript and from the keyboard; what the queue reads is in
:mod:`.queue`, what an action does in :mod:`.cases`.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.orm import joinedload, selectinload

from ..audit import log as audit_log
from ..auth import role_required
from ..db import db
from ..mailer import MailError
from ..models import (
    ACT_ROLES,
    CASE_OUTCOMES,
    LANGUAGES,
    READ_ROLES,
    SEGMENTS,
    Case,
    CaseEvent,
    Contact,
    Flag,
    Response,
    User,
    utcnow,
)
from ..specs import themes
from ..survey.responses import stored_themes
from ..templating import comment_highlights, highlight
from . import cases, flagging
from .flags import SEVERITY_NAMES
from .queue import MAX_ID, PAGE_SIZE, STATUS_FILTERS, Cursor, Filters, parse_filters, queue_page

bp = Blueprint("triage", __name__)


@bp.get("/triage")
@role_required(*READ_ROLES)
def queue():
    """The queue of flagged feedback, worst and oldest first, with filters."""
    error, status = None, 200
    try:
        filters = parse_filters(request.args)
        after = Cursor.decode(request.args["after"]) if request.args.get("after") else None
    except cases.CaseError as exc:
        error, status = str(exc), 400
        filters, after = Filters(), None
    seen = request.args.get("seen", "0")
    seen_count = int(seen) if seen.isdigit() and len(seen) < 9 else 0
    page = queue_page(filters, user_id=current_user.id, after=after, limit=PAGE_SIZE)
    return render_template(
        "triage/queue.html",
        page=page,
        filters=filters,
        after=after,
        seen=seen_count if after else 0,
        error=error,
        status_filters=STATUS_FILTERS,
        severities=SEVERITY_NAMES,
        segments=SEGMENTS,
        languages=LANGUAGES,
        staff=cases.assignable_users(),
        state_names=cases.STATE_NAMES,
        page_size=PAGE_SIZE,
        tz=cases.settings().calendar.tz,
    ), status


# --- the case page -------------------------------------------------------------------------


def get_case_or_404(case_id: int) -> Case:
    """The case with its flags, answers and history, or 404 (ids beyond any stored: 404)."""
    if case_id > MAX_ID:
        abort(404)
    case = db.session.scalar(
        sa.select(Case)
        .where(Case.id == case_id)
        .options(
            joinedload(Case.account),
            joinedload(Case.assignee),
            selectinload(Case.flags)
            .selectinload(Flag.response)
            .options(joinedload(Response.contact), selectinload(Response.answers)),
            selectinload(Case.history).joinedload(CaseEvent.user),
        )
    )
    if case is None:
        abort(404)
    return case


@dataclass
class CaseView:
    """Everything the case page shows besides the case itself."""

    comments: dict[int, list[tuple[t.Any, Markup]]]
    reasons: dict[int, tuple[str, ...]]
    earlier: list[Response]
    earlier_cases: dict[int, int | None]
    account_cases: list[Case]
    contacts: list[Contact]
    reply_contacts: list[Contact]
    staff: list[User]
    overdue: bool
    hours_to_first_contact: float | None
    hours_open: float | None
    hours_to_resolution: float | None


def case_view(case: Case, now: dt.datetime | None = None) -> CaseView:
    now = now or utcnow()
    comments, reasons = {}, {}
    for flag in case.flags:
        response = flag.response
        comments[flag.id] = [
            (
                a,
                highlight(
                    a.text,
                    comment_highlights(a.text, response.language),
                    stored_themes(a),
                    themes(current_app).label,
                ),
            )
            for a in response.answers
            if a.text
        ]
        reasons[flag.id] = flagging.flag_reasons(flag)
    contact_ids = sorted({f.response.contact_id for f in case.flags})
    flagged_ids = [f.response_id for f in case.flags]
    earlier = list(
        db.session.scalars(
            sa.select(Response)
            .where(Response.contact_id.in_(contact_ids), Response.id.not_in(flagged_ids))
            .options(selectinload(Response.answers), joinedload(Response.contact))
            .order_by(Response.submitted_at.desc(), Response.id.desc())
            .limit(20)
        ).unique()
    )
    earlier_cases = dict(
        db.session.execute(
            sa.select(Flag.response_id, Flag.case_id).where(
                Flag.response_id.in_([r.id for r in earlier])
            )
        ).all()
    )
    account_cases = list(
        db.session.scalars(
            sa.select(Case)
            .where(Case.account_id == case.account_id, Case.id != case.id)
            .order_by(Case.opened_at.desc())
            .limit(20)
        )
    )
    contacts = list(
        db.session.scalars(
            sa.select(Contact).where(Contact.account_id == case.account_id).order_by(Contact.name)
        )
    )
    return CaseView(
        comments=comments,
        reasons=reasons,
        earlier=earlier,
        earlier_cases=earlier_cases,
        account_cases=account_cases,
        contacts=contacts,
        reply_contacts=cases.reply_contacts(case),
        staff=cases.assignable_users(),
        overdue=cases.is_overdue(case, now),
        hours_to_first_contact=cases.business_hours(case.opened_at, case.first_contact_at),
        hours_open=cases.business_hours(case.opened_at, case.resolved_at or now),
        hours_to_resolution=cases.business_hours(case.opened_at, case.resolved_at),
    )


def _render_case(
    case: Case,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
):
    view = case_view(case)
    reply_contact = view.reply_contacts[0] if view.reply_contacts else None
    if values and values.get("contact_id", "").isdigit():
        chosen = int(values["contact_id"])
        reply_contact = next((c for c in view.reply_contacts if c.id == chosen), reply_contact)
    return render_template(
        "triage/case.html",
        case=case,
        view=view,
        errors=errors or {},
        values=values or {},
        can_act=current_user.role in ACT_ROLES,
        state_names=cases.STATE_NAMES,
        outcome_names=cases.OUTCOME_NAMES,
        outcomes=CASE_OUTCOMES,
        active_states=cases.ACTIVE_STATES,
        channels=cases.CONTACT_CHANNELS,
        default_reply=cases.default_reply(reply_contact) if reply_contact else "",
        event_detail=cases.event_detail,
        answer_themes=stored_themes,
        theme_label=themes(current_app).label,
        conf=cases.settings(),
        tz=cases.settings().calendar.tz,
    ), status


@bp.get("/triage/<int:case_id>")
@role_required(*READ_ROLES)
def case(case_id: int):
    """One case: the flagged answers with their highlights, the customer's history, actions."""
    return _render_case(get_case_or_404(case_id))


# --- actions -------------------------------------------------------------------------------


def _act(case_id: int, form_name: str, action: t.Callable[[Case, dict[str, str]], str]):
    """Run one staff action; on success redirect to the case, else show it with the error.

    Nothing is committed unless the action succeeds; the typed text is kept on error.
    """
    case = get_case_or_404(case_id)
    values = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        message = action(case, values)
    except cases.CaseError as exc:
        db.session.rollback()
        case = get_case_or_404(case_id)
        return _render_case(case, status=422, errors={form_name: str(exc)}, values=values)
    except MailError as exc:
        db.session.rollback()
        case = get_case_or_404(case_id)
        error = f"The mail server did not take the email ({exc}). Nothing was sent; try again."
        return _render_case(case, status=502, errors={form_name: error}, values=values)
    audit_log.record(
        f"case.{form_name}",
        target=f"case:{case_id}",
        detail=audit_log.pick(values, ("assignee_id", "status", "outcome", "kind", "contact_id")),
    )
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("triage.case", case_id=case_id) + f"#{form_name}", code=303)


def _user_or_error(value: str) -> User | None:
    if value in ("", "none"):
        return None
    user = db.session.get(User, int(value)) if value.isdigit() and len(value) < 10 else None
    if user is None:
        raise cases.CaseError("Unknown staff member; choose one from the list.")
    return user


@bp.post("/triage/<int:case_id>/assign")
@role_required(*ACT_ROLES)
def assign(case_id: int):
    """Give the case to a support lead (or to nobody)."""

    def run(case: Case, form: dict[str, str]) -> str:
        assignee = _user_or_error(form.get("assignee_id", ""))
        cases.assign(case, current_user, assignee)
        return f"Assigned to {assignee.email}." if assignee else "The case is unassigned."

    return _act(case_id, "assign", run)


@bp.post("/triage/<int:case_id>/note")
@role_required(*ACT_ROLES)
def note(case_id: int):
    """Add an internal note to the case's history."""

    def run(case: Case, form: dict[str, str]) -> str:
        cases.add_note(case, current_user, form.get("body", ""))
        return "Note added."

    return _act(case_id, "note", run)


@bp.post("/triage/<int:case_id>/contact")
@role_required(*ACT_ROLES)
def contact(case_id: int):
    """Log a call, meeting or other contact with the customer (stops the first-contact clock)."""

    def run(case: Case, form: dict[str, str]) -> str:
        cases.log_contact(case, current_user, form.get("channel", ""), form.get("body", ""))
        return "Contact logged."

    return _act(case_id, "contact", run)


@bp.post("/triage/<int:case_id>/status")
@role_required(*ACT_ROLES)
def status(case_id: int):
    """Move the case between open, in progress and waiting on the customer."""

    def run(case: Case, form: dict[str, str]) -> str:
        cases.set_status(case, current_user, form.get("status", ""))
        return f"Status: {cases.STATE_NAMES[case.status]}."

    return _act(case_id, "status", run)


@bp.post("/triage/<int:case_id>/resolve")
@role_required(*ACT_ROLES)
def resolve(case_id: int):
    """Resolve the case with an outcome."""

    def run(case: Case, form: dict[str, str]) -> str:
        outcome = form.get("outcome", "")
        cases.resolve(case, current_user, outcome, form.get("note", ""))  # checks the outcome
        return f"Resolved: {cases.OUTCOME_NAMES[outcome]}."

    return _act(case_id, "resolve", run)


@bp.post("/triage/<int:case_id>/reopen")
@role_required(*ACT_ROLES)
def reopen(case_id: int):
    """Open a resolved case again."""

    def run(case: Case, form: dict[str, str]) -> str:
        cases.reopen(case, current_user, form.get("reason", ""))
        return "Reopened."

    return _act(case_id, "reopen", run)


@bp.post("/triage/<int:case_id>/reply")
@role_required(*ACT_ROLES)
def reply(case_id: int):
    """Email the customer a reply in their language, and record it."""

    def run(case: Case, form: dict[str, str]) -> str:
        raw = form.get("contact_id", "")
        contact = db.session.get(Contact, int(raw)) if raw.isdigit() and len(raw) < 10 else None
        if contact is None:
            raise cases.CaseError("Choose who the reply goes to.")
        cases.send_reply(case, current_user, contact, form.get("body", ""))
        return f"Reply sent to {contact.email}."

    return _act(case_id, "reply", run)
