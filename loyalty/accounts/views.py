"""The account pages: the list of live accounts (``/accounts``) and one account
(``/accounts/<id>``) with its health, history, contacts, timeline and actions.

Only the routes live here: what the list reads is :mod:`.listing`, what the account page
reads is :mod:`.detail`. Every action is a plain form POST (CSRF-checked app-wide) that
redirects back, so the page works without JavaScript; bad input is answered with the reason,
a 422 and the typed text kept. What an action does is :mod:`.services` (owner, decision
maker, churn) and :mod:`.warnings` (acknowledge, resolve).
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from .. import periods
from ..audit import log as audit_log
from ..auth import role_required
from ..dashboard import charts
from ..db import db
from ..emails import WARNING_NAMES
from ..models import ACT_ROLES, LANGUAGES, READ_ROLES, SEGMENTS, Account, Contact, HealthWarning
from ..triage.cases import STATE_NAMES
from ..triage.settings import settings
from . import services, warnings
from .detail import SIGNAL_NAMES, account_view
from .listing import (
    BAND_NAMES,
    PAGE_SIZE,
    SORTS,
    STATUS_FILTERS,
    WARNING_FILTERS,
    AccountPageError,
    Filters,
    account_page,
    money,
    owners,
    parse_filters,
    revenue_at_risk,  # loyalty.dashboard.views still imports it from here
)

bp = Blueprint("accounts", __name__)
bp.register_blueprint(charts.bp)  # plotly.js, served from the installed plotly package

#: Larger ids cannot be stored (SQLite and PostgreSQL integers), so they are simply unknown.
MAX_ID = 2**31 - 1
#: Before this no churn is believable (and far enough back, a local midnight is no moment).
EARLIEST_CHURN = dt.date(1970, 1, 1)


# --- the list ------------------------------------------------------------------------------


@bp.get("/accounts")
@role_required(*READ_ROLES)
def index():
    """Every live account with its health, warnings, cases and value; revenue at risk first."""
    error, status = None, 200
    try:
        filters = parse_filters(request.args)
        after = request.args.get("after") or None
        page = account_page(filters, user_id=current_user.id, after=after, limit=PAGE_SIZE)
    except AccountPageError as exc:
        error, status = str(exc), 400
        filters, after = Filters(), None
        page = account_page(filters, user_id=current_user.id, limit=PAGE_SIZE)
    seen = request.args.get("seen", "0")
    seen_count = int(seen) if seen.isdigit() and len(seen) < 9 else 0
    mine = db.session.scalar(
        sa.select(sa.func.count(Account.id)).where(
            Account.owner_id == current_user.id, Account.churned_at.is_(None)
        )
    )
    return render_template(
        "accounts/index.html",
        page=page,
        filters=filters,
        after=after,
        seen=seen_count if after else 0,
        error=error,
        at_risk=revenue_at_risk(),
        at_risk_here=(
            revenue_at_risk(filters, current_user.id)
            if filters.narrowed and filters.status != "churned"
            else None
        ),
        mine=mine or 0,
        sorts=SORTS,
        status_filters=STATUS_FILTERS,
        warning_filters=WARNING_FILTERS,
        bands=BAND_NAMES,
        segments=SEGMENTS,
        languages=LANGUAGES,
        staff=owners(),
        warning_names=WARNING_NAMES,
        page_size=PAGE_SIZE,
        money=money,
        tz=settings().calendar.tz,
    ), status


# --- the account page and its actions ------------------------------------------------------


def get_account_or_404(account_id: int) -> Account:
    if account_id > MAX_ID:
        abort(404)
    account = db.session.scalar(
        sa.select(Account).where(Account.id == account_id).options(joinedload(Account.owner))
    )
    if account is None:
        abort(404)
    return account


def _render_account(
    account: Account,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
):
    tz = settings().calendar.tz
    return render_template(
        "accounts/account.html",
        account=account,
        view=account_view(account),
        errors=errors or {},
        values=values or {},
        can_act=current_user.role in ACT_ROLES,
        bands=BAND_NAMES,
        signal_names=SIGNAL_NAMES,
        warning_names=WARNING_NAMES,
        state_names=STATE_NAMES,
        today=periods.today(tz).isoformat(),
        money=money,
        tz=tz,
    ), status


@bp.get("/accounts/<int:account_id>")
@role_required(*READ_ROLES)
def account(account_id: int):
    """One account: its score and why, its history, contacts, timeline and actions."""
    return _render_account(get_account_or_404(account_id))


def _act(account_id: int, form_name: str, action: t.Callable[[Account, dict[str, str]], str]):
    """Run one action; on success redirect to the account, else show it with the error and
    the typed text kept. Nothing is committed unless the action succeeds."""
    account = get_account_or_404(account_id)
    values = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        message = action(account, values)
    except (AccountPageError, warnings.WarningError) as exc:
        db.session.rollback()
        return _render_account(
            get_account_or_404(account_id), status=422, errors={form_name: str(exc)}, values=values
        )
    except services.InviteError as exc:
        db.session.rollback()
        reason = str(exc).partition(": ")[2] or str(exc)
        return _render_account(
            get_account_or_404(account_id),
            status=422,
            errors={form_name: reason[:1].upper() + reason[1:] + "."},
            values=values,
        )
    _audit(account_id, values)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("accounts.account", account_id=account_id) + f"#{form_name}", code=303)


def _audit(account_id: int, values: dict[str, str]) -> None:
    """The action in the audit log: a warning acted on, or a change to the account."""
    view, args = (request.endpoint or "").rpartition(".")[2], request.view_args or {}
    if view == "act_on_warning":
        status = audit_log.pick(values, ("status",)).get("status", "")
        audit_log.record(f"warning.{status}", target=f"warning:{args['warning_id']}")
        return
    detail = audit_log.pick(values, ("owner_email", "decision_maker", "churned_on"))
    if view == "decision_maker":
        detail["contact_id"] = str(args["contact_id"])
    action = {"set_owner": "owner"}.get(view, view)
    audit_log.record(f"account.{action}", target=f"account:{account_id}", detail=detail)


@bp.post("/accounts/<int:account_id>/owner")
@role_required(*ACT_ROLES)
def set_owner(account_id: int):
    """Give the account to a staff member, or to nobody."""

    def run(account: Account, form: dict[str, str]) -> str:
        email = form.get("owner_email", "").strip()
        if len(email) > 254:
            raise AccountPageError("Choose the owner from the list.")
        services.set_owner(account, email or None)
        return f"Owner: {account.owner.email}." if account.owner else "The account has no owner."

    return _act(account_id, "owner", run)


@bp.post("/accounts/<int:account_id>/contacts/<int:contact_id>/decision-maker")
@role_required(*ACT_ROLES)
def decision_maker(account_id: int, contact_id: int):
    """Mark a contact as a decision maker of the account, or not."""
    contact = db.session.get(Contact, contact_id) if contact_id <= MAX_ID else None
    if contact is None or contact.account_id != account_id:
        abort(404)

    def run(account: Account, form: dict[str, str]) -> str:
        choice = form.get("decision_maker", "")
        if choice not in ("1", "0"):
            raise AccountPageError("Choose whether the contact is a decision maker.")
        services.set_decision_maker(contact, choice == "1")
        return f"{contact.name} is {'a' if choice == '1' else 'no longer a'} decision maker."

    return _act(account_id, f"contact-{contact_id}", run)


@bp.post("/accounts/<int:account_id>/warnings/<int:warning_id>")
@role_required(*ACT_ROLES)
def act_on_warning(account_id: int, warning_id: int):
    """Acknowledge a warning (someone is on it) or resolve it, with a note."""
    warning = db.session.get(HealthWarning, warning_id) if warning_id <= MAX_ID else None
    if warning is None or warning.account_id != account_id:
        abort(404)

    def run(account: Account, form: dict[str, str]) -> str:
        status = form.get("status", "")
        warnings.act_on_warning(warning, current_user, status, form.get("note", ""))
        name = WARNING_NAMES.get(warning.kind, warning.kind)
        return f"Warning {'resolved' if status == 'resolved' else 'acknowledged'}: {name}."

    return _act(account_id, f"warning-{warning_id}", run)


@bp.post("/accounts/<int:account_id>/churn")
@role_required(*ACT_ROLES)
def churn(account_id: int):
    """Record that the customer left on a day; the account leaves the live views."""

    def run(account: Account, form: dict[str, str]) -> str:
        raw = form.get("churned_on", "").strip()
        tz = settings().calendar.tz
        try:
            day = dt.date.fromisoformat(raw) if len(raw) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise AccountPageError("Give the day the customer left as YYYY-MM-DD.")
        if day < EARLIEST_CHURN:
            raise AccountPageError(f"Give a day from {EARLIEST_CHURN:%Y} on.")
        if day > periods.today(tz):
            raise AccountPageError("The churn date is in the future; give the day they left.")
        services.mark_churned(account, periods.midnight(day, tz))
        return f"Marked as churned on {day.isoformat()}. The history stays."

    return _act(account_id, "churn", run)


@bp.post("/accounts/<int:account_id>/reactivate")
@role_required(*ACT_ROLES)
def reactivate(account_id: int):
    """The customer is back: the account is live again."""

    def run(account: Account, form: dict[str, str]) -> str:
        if account.churned_at is None:
            raise AccountPageError("The account is live already.")
        services.reactivate(account)
        return "The account is live again."

    return _act(account_id, "churn", run)
