"""``/admin``: what an admin did with a shell before. Staff users (invite with a set-password
link, role, deactivate, reset) and the survey definitions, previewed as customers see them.

Every change is a POST with the session's CSRF token, and works without JavaScript. API keys
and webhooks are :mod:`.integrations`, CSV imports :mod:`.uploads`.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import emails
from ..auth import role_required
from ..db import db
from ..mailer import MailError
from ..models import ADMIN_ROLES, LANGUAGES, ROLES, AuditEvent, User
from ..specs import surveys as survey_specs
from ..survey import views as survey_views
from . import confirm, staff

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("")
@role_required(*ADMIN_ROLES)
def index():
    return render_template("admin/index.html")


# --- staff users ---------------------------------------------------------------------------


def _last_sign_ins() -> dict[int | None, object]:
    rows = db.session.execute(
        sa.select(AuditEvent.actor_id, sa.func.max(AuditEvent.at))
        .where(AuditEvent.action == "sign_in", AuditEvent.actor_id.is_not(None))
        .group_by(AuditEvent.actor_id)
    )
    return {user_id: at for user_id, at in rows}


def _users_page(status: int = 200, **values: object):
    return (
        render_template(
            "admin/users.html",
            users=staff.all_users(),
            roles=ROLES,
            last_sign_in=_last_sign_ins(),
            hours=current_app.config["SET_PASSWORD_HOURS"],
            **values,
        ),
        status,
    )


@bp.get("/users")
@role_required(*ADMIN_ROLES)
def users():
    return _users_page()


def _send_link(user: User, *, reset: bool) -> str | None:
    """Email the set-password link; the reason it could not be sent, or None."""
    message = emails.set_password(
        user, staff.set_password_url(user), invited_by=current_user, reset=reset
    )
    try:
        emails.transport().send(message)
    except MailError as exc:
        current_app.logger.warning("set-password link to user %s not sent: %s", user.id, exc)
        return str(exc)
    return None


@bp.post("/users")
@role_required(*ADMIN_ROLES)
def invite():
    """A new staff user, emailed a link to choose their password."""
    email, role = request.form.get("email", ""), request.form.get("role", "")
    try:
        user = staff.invite(email, role)
    except ValueError as exc:  # StaffError, or the address's InviteError
        db.session.rollback()
        return _users_page(400, message=str(exc), email=email, role=role)
    db.session.commit()
    problem = _send_link(user, reset=False)
    if problem:
        flash(
            f"{user.email} was added, but the e-mail could not be sent ({problem}). "
            "Send a new link once mail works.",
            "error",
        )
    else:
        flash(f"Invited {user.email} as {user.role}: a set-password link is on its way.")
    return redirect(url_for(".users"), 303)


def _user_or_404(user_id: int) -> User:
    user = staff.find_user(user_id)
    if user is None:
        abort(404)
    return user


def _change(user_id: int, change, done: str):
    user = _user_or_404(user_id)
    try:
        change(user)
    except staff.StaffError as exc:
        db.session.rollback()
        return _users_page(409, message=str(exc))
    db.session.commit()
    flash(done.format(email=user.email, role=user.role))
    return redirect(url_for(".users"), 303)


@bp.post("/users/<int:user_id>/role")
@role_required(*ADMIN_ROLES)
def change_role(user_id: int):
    role = request.form.get("role", "")
    if role not in ROLES:
        return _users_page(400, message=f"role: must be one of {', '.join(ROLES)}")
    return _change(user_id, lambda u: staff.change_role(u, role), "{email} is now {role}.")


@bp.get("/users/<int:user_id>/deactivate")
@role_required(*ADMIN_ROLES)
def deactivate_confirm(user_id: int):
    """Ask before deactivating: the person is signed out everywhere at once."""
    user = _user_or_404(user_id)
    if not user.active:
        flash(f"{user.email} is deactivated already.")
        return redirect(url_for(".users") + f"#user-{user.id}", 303)
    try:  # say so now, not after the confirmation
        staff.keep_an_admin(user, "deactivated")
    except staff.StaffError as exc:
        return _users_page(409, message=str(exc))
    you = " You will be signed out yourself." if user.id == current_user.id else ""
    return confirm.page(
        title=f"Deactivate {user.email}?",
        consequence=f"{user.email} ({user.role}) can no longer sign in, and every session of "
        f"theirs ends at once. Their cases and history stay theirs; you can reactivate them "
        f"later.{you}",
        action=url_for(".deactivate", user_id=user.id),
        cancel=url_for(".users") + f"#user-{user.id}",
        button="Deactivate",
    )


@bp.post("/users/<int:user_id>/deactivate")
@role_required(*ADMIN_ROLES)
def deactivate(user_id: int):
    _user_or_404(user_id)
    if not confirm.confirmed():
        return _users_page(400, message=confirm.refusal("deactivating a user"))
    return _change(
        user_id, staff.deactivate, "{email} can no longer sign in; their sessions ended."
    )


@bp.post("/users/<int:user_id>/reactivate")
@role_required(*ADMIN_ROLES)
def reactivate(user_id: int):
    return _change(user_id, staff.reactivate, "{email} can sign in again.")


@bp.get("/users/<int:user_id>/reset")
@role_required(*ADMIN_ROLES)
def reset_confirm(user_id: int):
    """Ask before a reset: the person's password stops working at once."""
    user = _user_or_404(user_id)
    if not user.active:
        return _users_page(409, message="user: reactivate the user before resetting their password")
    hours = current_app.config["SET_PASSWORD_HOURS"]
    return confirm.page(
        title=f"Reset the password of {user.email}?",
        consequence=f"Their current password stops working at once and every session of "
        f"theirs ends; a link to choose a new one is e-mailed to {user.email}, good for "
        f"{hours} hours.",
        action=url_for(".reset", user_id=user.id),
        cancel=url_for(".users") + f"#user-{user.id}",
        button="Reset the password",
    )


@bp.post("/users/<int:user_id>/reset")
@role_required(*ADMIN_ROLES)
def reset(user_id: int):
    """The old password stops working; a new set-password link goes out."""
    user = _user_or_404(user_id)
    if not confirm.confirmed():
        return _users_page(400, message=confirm.refusal("resetting a password"))
    try:
        staff.reset_password(user)
    except staff.StaffError as exc:
        db.session.rollback()
        return _users_page(409, message=str(exc))
    db.session.commit()
    problem = _send_link(user, reset=True)
    if problem:
        flash(f"The password was reset, but the e-mail could not be sent ({problem}).", "error")
    else:
        flash(f"{user.email}'s password was reset: a set-password link is on its way.")
    return redirect(url_for(".users"), 303)


# --- survey definitions --------------------------------------------------------------------


@bp.get("/surveys")
@role_required(*ADMIN_ROLES)
def surveys():
    """Each survey in ``forms/``: version, languages, questions and what sends it."""
    return render_template("admin/surveys.html", surveys=survey_specs(current_app))


@bp.get("/surveys/<survey_id>/<language>")
@role_required(*ADMIN_ROLES)
def preview(survey_id: str, language: str):
    """The survey exactly as a customer sees it in ``language``."""
    survey = survey_specs(current_app).get(survey_id)
    if survey is None or language not in LANGUAGES or language not in survey.languages:
        abort(404)
    return survey_views.preview(survey, language)
