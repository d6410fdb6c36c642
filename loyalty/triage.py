"""The triage queue (``/triage``) and the case page (``/triage/<id>``) support leads live in.

The queue lists cases worst first: overdue, then severity, then age. It pages by keyset (a
cursor of the last row's sort key), so the thousandth page costs what the first does, and
loads each page's accounts, assignees, flags and comments in a fixed number of queries.
Every action is a plain form POST (CSRF-checked app-wide) that redirects back to the case,
so the page works without JavaScript and from the keyboard.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup, escape
from sqlalchemy.orm import joinedload, selectinload

from . import cases, sentiment
from .auth import role_required
from .db import db
from .flags import SEVERITY_NAMES, severity_name
from .mailer import MailError
from .models import (
    CASE_OUTCOMES,
    LANGUAGES,
    SEGMENTS,
    Account,
    Answer,
    Case,
    CaseEvent,
    Contact,
    Flag,
    Response,
    User,
    utcnow,
)

if t.TYPE_CHECKING:
    from flask import Flask

bp = Blueprint("triage", __name__)

READ_ROLES = ("admin", "support", "executive")
PAGE_SIZE = 50
STATUS_FILTERS = {
    "active": "Not resolved",
    "open": "Open",
    "in_progress": "In progress",
    "waiting_on_customer": "Waiting on customer",
    "resolved": "Resolved",
    "all": "All",
}
#: Larger ids cannot be stored (SQLite and PostgreSQL integers), so they are simply unknown.
MAX_ID = 2**31 - 1
_CURSOR = re.compile(r"^([01])\.([0-9]{1,2})\.([0-9]{1,19})\.([0-9]{1,19})$")


def init_app(app: Flask) -> None:
    app.add_template_filter(severity_name, "severity")

    @app.template_filter("local")
    @pass_context
    def local_time(context: t.Any, moment: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A stored UTC moment in the SLA clock's time zone, as staff read times.

        Pages that show many times pass ``tz`` in, so the settings are read once a page."""
        if moment is None:
            return ""
        tz = context.get("tz") or cases.settings().calendar.tz
        return moment.astimezone(tz).strftime(fmt)

    @app.template_filter("hours")
    def hours_text(value: float | None) -> str:
        if value is None:
            return "–"
        return f"{value:.1f} h" if value < 100 else f"{value:,.0f} h"


# --- highlights ----------------------------------------------------------------------------


def highlight(text: str | None, highlights: t.Iterable[sentiment.Highlight]) -> Markup:
    """``text`` escaped, with each highlighted word or phrase wrapped in ``<mark>``.

    Matches are found in the raw text and every piece is escaped on its own, so a highlight
    can never match inside an escaped entity nor let customer text become HTML.
    """
    if not text:
        return Markup("")
    spans: list[tuple[int, int, float]] = []
    for item in highlights:
        phrase = item.text
        if not phrase or not phrase.strip():
            continue
        pattern = re.escape(phrase)
        if phrase[0].isalnum():
            pattern = r"(?<!\w)" + pattern
        if phrase[-1].isalnum():
            pattern += r"(?!\w)"
        spans += [(m.start(), m.end(), item.weight) for m in re.finditer(pattern, text)]
    out, pos = [], 0
    for start, end, weight in sorted(spans, key=lambda s: (s[0], s[0] - s[1])):
        if start < pos:
            continue
        out.append(escape(text[pos:start]))
        tone = "negative" if weight < 0 else "positive"
        out.append(
            Markup('<mark class="{}" title="{} ({:+.2f})">{}</mark>').format(
                tone, tone, weight, text[start:end]
            )
        )
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def comment_highlights(answer_text: str, language: str) -> tuple[sentiment.Highlight, ...]:
    return sentiment.score(answer_text, language).highlights


# --- the queue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    status: str = "active"
    assignee: str = ""  # "", "me", "none" or a user id
    account: str = ""  # part of the account's name
    segment: str = ""
    language: str = ""
    severity: int = 0  # at least this severe

    def args(self) -> dict[str, str]:
        """The filters as query arguments, leaving out the defaults."""
        values = {
            "status": self.status if self.status != "active" else "",
            "assignee": self.assignee,
            "account": self.account,
            "segment": self.segment,
            "language": self.language,
            "severity": str(self.severity) if self.severity else "",
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Cursor:
    """The sort key of the last row shown: the next page starts after it."""

    overdue: int
    severity: int
    opened_at: dt.datetime
    id: int

    def encode(self) -> str:
        micros = int(self.opened_at.timestamp() * 1_000_000)
        return f"{self.overdue}.{self.severity}.{micros}.{self.id}"

    @classmethod
    def decode(cls, value: str) -> Cursor:
        match = _CURSOR.match(value)
        if not match:
            raise cases.CaseError("That page link is not valid; start again from the first page.")
        overdue, severity, micros, case_id = (int(g) for g in match.groups())
        if case_id > MAX_ID:
            raise cases.CaseError("That page link is not valid; start again.")
        try:
            opened = dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise cases.CaseError("That page link is not valid; start again.") from None
        return cls(overdue, severity, opened, case_id)


@dataclass(frozen=True)
class QueueRow:
    """What the queue shows of one case; read with plain SQL rows, not ORM objects, so
    a page of fifty costs a few milliseconds."""

    id: int
    overdue: bool
    severity: int
    status: str
    opened_at: dt.datetime
    first_contact_due_at: dt.datetime
    first_contact_at: dt.datetime | None
    account: str
    segment: str
    assignee: str | None
    contact: str = ""
    language: str = ""
    answers: int = 0
    rules: tuple[str, ...] = ()
    excerpt: str = ""


@dataclass
class QueuePage:
    rows: list[QueueRow]
    total: int
    next_cursor: str | None


def parse_filters(args: t.Mapping[str, str]) -> Filters:
    """Read the queue's filters from a query string; raise CaseError naming a bad one."""
    status = args.get("status", "") or "active"
    if status not in STATUS_FILTERS:
        raise cases.CaseError(f"Unknown status {status!r}; choose one of the listed statuses.")
    assignee = args.get("assignee", "").strip()
    if assignee not in ("", "me", "none") and not (assignee.isdigit() and len(assignee) < 10):
        raise cases.CaseError("Unknown assignee; choose one from the list.")
    segment = args.get("segment", "")
    if segment and segment not in SEGMENTS:
        raise cases.CaseError(f"Segment must be one of {', '.join(SEGMENTS)}.")
    language = args.get("language", "")
    if language and language not in LANGUAGES:
        raise cases.CaseError(f"Language must be one of {', '.join(LANGUAGES)}.")
    raw_severity = args.get("severity", "") or "0"
    if not raw_severity.isdigit() or int(raw_severity) not in SEVERITY_NAMES:
        raise cases.CaseError("Severity must be one of the listed levels.")
    account = args.get("account", "").strip()
    if len(account) > 200 or any(ord(c) < 32 for c in account):
        raise cases.CaseError("The account search is at most 200 characters, on one line.")
    return Filters(status, assignee, account, segment, language, int(raw_severity))


def _filtered(query: sa.Select, filters: Filters, user_id: int | None) -> sa.Select:
    if filters.status == "active":
        query = query.where(Case.status.in_(cases.ACTIVE_STATES))
    elif filters.status != "all":
        query = query.where(Case.status == filters.status)
    if filters.assignee == "me":
        query = query.where(Case.assignee_id == user_id)
    elif filters.assignee == "none":
        query = query.where(Case.assignee_id.is_(None))
    elif filters.assignee:
        query = query.where(Case.assignee_id == int(filters.assignee))
    if filters.severity:
        query = query.where(Case.severity >= filters.severity)
    if filters.account:  # few accounts match a name: look them up first
        needle = filters.account.lower().replace("\\", "\\\\")
        needle = needle.replace("%", "\\%").replace("_", "\\_")
        matching = sa.select(Account.id).where(
            sa.func.lower(Account.name).like(f"%{needle}%", escape="\\")
        )
        query = query.where(Case.account_id.in_(matching))
    if filters.segment:  # half the accounts match a segment: check each case's account
        query = query.where(
            sa.select(Account.id)
            .where(Account.id == Case.account_id, Account.segment == filters.segment)
            .exists()
        )
    if filters.language:
        query = query.where(Case.language == filters.language)
    return query


def queue_page(
    filters: Filters,
    *,
    user_id: int | None = None,
    after: Cursor | None = None,
    now: dt.datetime | None = None,
    limit: int = PAGE_SIZE,
) -> QueuePage:
    """One page of the queue, worst first: overdue, then severity, then oldest."""
    now = now or utcnow()
    overdue = sa.case((cases.overdue_clause(now), 1), else_=0)
    total = db.session.scalar(_filtered(sa.select(sa.func.count(Case.id)), filters, user_id))
    # First the page's ids from the sort key alone (the queue index covers it, so the
    # database never reads whole rows to sort), then the page's cases with what they show.
    keys = _filtered(
        sa.select(Case.id, overdue.label("overdue"), Case.severity, Case.opened_at),
        filters,
        user_id,
    )
    if after is not None:
        keys = keys.where(
            sa.or_(
                overdue < after.overdue,
                sa.and_(
                    overdue == after.overdue,
                    sa.or_(
                        Case.severity < after.severity,
                        sa.and_(
                            Case.severity == after.severity,
                            sa.or_(
                                Case.opened_at > after.opened_at,
                                sa.and_(Case.opened_at == after.opened_at, Case.id > after.id),
                            ),
                        ),
                    ),
                ),
            )
        )
    keys = keys.order_by(overdue.desc(), Case.severity.desc(), Case.opened_at, Case.id)
    found = db.session.execute(keys.limit(limit + 1)).all()
    page_keys = found[:limit]
    rows = _queue_rows([k.id for k in page_keys], {k.id: bool(k.overdue) for k in page_keys})
    next_cursor = None
    if len(found) > limit:
        last = page_keys[-1]
        next_cursor = Cursor(int(last.overdue), last.severity, last.opened_at, last.id).encode()
    return QueuePage(rows, total, next_cursor)


def _queue_rows(ids: list[int], overdue: dict[int, bool]) -> list[QueueRow]:
    """The page's cases, accounts and assignees; then their flags, customers and comments."""
    if not ids:
        return []
    cases_ = db.session.execute(
        sa.select(
            Case.id,
            Case.severity,
            Case.status,
            Case.opened_at,
            Case.first_contact_due_at,
            Case.first_contact_at,
            Account.name,
            Account.segment,
            User.email,
        )
        .join(Account, Case.account_id == Account.id)
        .outerjoin(User, Case.assignee_id == User.id)
        .where(Case.id.in_(ids))
    ).all()
    flagged = db.session.execute(
        sa.select(Flag.case_id, Flag.id, Flag.rules, Response.language, Contact.name, Answer.text)
        .join(Response, Flag.response_id == Response.id)
        .join(Contact, Response.contact_id == Contact.id)
        .outerjoin(Answer, sa.and_(Answer.response_id == Response.id, Answer.text.is_not(None)))
        .where(Flag.case_id.in_(ids))
        .order_by(Flag.case_id, Flag.id, Answer.id)
    ).all()
    details: dict[int, dict[str, t.Any]] = {}
    for case_id, flag_id, rules, language, contact, text in flagged:
        detail = details.setdefault(
            case_id, {"contact": contact, "language": language, "rules": [], "flags": set()}
        )
        detail["flags"].add(flag_id)
        detail["rules"] += [r for r in rules.split(",") if r and r not in detail["rules"]]
        if text and "excerpt" not in detail:
            detail["excerpt"] = text
    by_id = {}
    for row in cases_:
        detail = details.get(row.id, {})
        by_id[row.id] = QueueRow(
            id=row.id,
            overdue=overdue[row.id],
            severity=row.severity,
            status=row.status,
            opened_at=row.opened_at,
            first_contact_due_at=row.first_contact_due_at,
            first_contact_at=row.first_contact_at,
            account=row.name,
            segment=row.segment,
            assignee=row.email,
            contact=detail.get("contact", ""),
            language=detail.get("language", ""),
            answers=len(detail.get("flags", ())),
            rules=tuple(detail.get("rules", ())),
            excerpt=detail.get("excerpt", ""),
        )
    return [by_id[i] for i in ids if i in by_id]


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
            (a, highlight(a.text, comment_highlights(a.text, response.language)))
            for a in response.answers
            if a.text
        ]
        reasons[flag.id] = cases.verdict_for(response).reasons
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
        can_act=current_user.role in cases.ACTING_ROLES,
        state_names=cases.STATE_NAMES,
        outcome_names=cases.OUTCOME_NAMES,
        outcomes=CASE_OUTCOMES,
        active_states=cases.ACTIVE_STATES,
        channels=cases.CONTACT_CHANNELS,
        default_reply=cases.default_reply(reply_contact) if reply_contact else "",
        event_detail=cases.event_detail,
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
@role_required(*cases.ACTING_ROLES)
def assign(case_id: int):
    """Give the case to a support lead (or to nobody)."""

    def run(case: Case, form: dict[str, str]) -> str:
        assignee = _user_or_error(form.get("assignee_id", ""))
        cases.assign(case, current_user, assignee)
        return f"Assigned to {assignee.email}." if assignee else "The case is unassigned."

    return _act(case_id, "assign", run)


@bp.post("/triage/<int:case_id>/note")
@role_required(*cases.ACTING_ROLES)
def note(case_id: int):
    """Add an internal note to the case's history."""

    def run(case: Case, form: dict[str, str]) -> str:
        cases.add_note(case, current_user, form.get("body", ""))
        return "Note added."

    return _act(case_id, "note", run)


@bp.post("/triage/<int:case_id>/contact")
@role_required(*cases.ACTING_ROLES)
def contact(case_id: int):
    """Log a call, meeting or other contact with the customer (stops the first-contact clock)."""

    def run(case: Case, form: dict[str, str]) -> str:
        cases.log_contact(case, current_user, form.get("channel", ""), form.get("body", ""))
        return "Contact logged."

    return _act(case_id, "contact", run)


@bp.post("/triage/<int:case_id>/status")
@role_required(*cases.ACTING_ROLES)
def status(case_id: int):
    """Move the case between open, in progress and waiting on the customer."""

    def run(case: Case, form: dict[str, str]) -> str:
        cases.set_status(case, current_user, form.get("status", ""))
        return f"Status: {cases.STATE_NAMES[case.status]}."

    return _act(case_id, "status", run)


@bp.post("/triage/<int:case_id>/resolve")
@role_required(*cases.ACTING_ROLES)
def resolve(case_id: int):
    """Resolve the case with an outcome."""

    def run(case: Case, form: dict[str, str]) -> str:
        cases.resolve(case, current_user, form.get("outcome", ""), form.get("note", ""))
        return f"Resolved: {cases.OUTCOME_NAMES[case.outcome]}."

    return _act(case_id, "resolve", run)


@bp.post("/triage/<int:case_id>/reopen")
@role_required(*cases.ACTING_ROLES)
def reopen(case_id: int):
    """Open a resolved case again."""

    def run(case: Case, form: dict[str, str]) -> str:
        cases.reopen(case, current_user, form.get("reason", ""))
        return "Reopened."

    return _act(case_id, "reopen", run)


@bp.post("/triage/<int:case_id>/reply")
@role_required(*cases.ACTING_ROLES)
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
