"""Staff users as an admin manages them: invited by e-mail with a set-password link, a new
role, deactivated and back, a password reset; the last active admin always stays one.

A set-password link is signed (itsdangerous, with ``SECRET_KEY``) and carries the user's id,
a fingerprint of their password hash and the time it was made. Setting a password changes
the hash, so a link works once; it expires after ``SET_PASSWORD_HOURS``; no table is needed.
"""

from __future__ import annotations

import hashlib
import secrets
import typing as t

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..accounts.services import normalise_email
from ..audit import log as audit_log
from ..db import db
from ..models import ADMIN_ROLES, ROLES, User

SALT = "loyalty.set-password"
MIN_PASSWORD = 8


class StaffError(ValueError):
    """A change refused, with a reason to show the admin ("field: why")."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=SALT)


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def link_token(user: User) -> str:
    """The token of a set-password link for ``user``: valid until used or expired."""
    return _serializer().dumps({"user": user.id, "hash": _fingerprint(user)})


def set_password_url(user: User) -> str:
    return f"{current_app.config['BASE_URL']}/password/{link_token(user)}"


def user_for_token(token: str) -> User | None:
    """The active user a link is for, or None when it is forged, used, expired or theirs no
    more (deactivated)."""
    max_age = round(3600 * float(current_app.config["SET_PASSWORD_HOURS"]))
    try:
        data = _serializer().loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(data, dict) or not isinstance(data.get("user"), int):
        return None
    user = db.session.get(User, data["user"])
    if user is None or not user.active or data.get("hash") != _fingerprint(user):
        return None
    return user


def check_password_rule(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > 200:
        raise StaffError("password: at most 200 characters")


def _unusable_password(user: User) -> None:
    """A random password nobody knows: the user signs in only once they set their own."""
    user.set_password(secrets.token_urlsafe(32))


def _end_sessions(user: User) -> None:
    user.session_token = secrets.token_urlsafe(32)


def invite(email: str, role: str) -> User:
    """A new staff user with no usable password yet; the caller sends them the link."""
    user = create_user(email, role, secrets.token_urlsafe(32))
    db.session.flush()
    audit_log.record("user.invite", target=f"user:{user.id}", detail={"role": role})
    return user


def create_user(email: str, role: str, password: str) -> User:
    """Create a staff user; raises ValueError (a :class:`StaffError` or the address's
    ``InviteError``) with a readable reason.

    The email is stored as every address is (``accounts.services.normalise_email``: checked,
    in lower case), so one that differs from an existing user's only in letter case is
    refused, and the unique constraint on ``users.email`` is blind to case (migration
    c65468444872 lower-cased the existing ones).
    """
    email = normalise_email(email.strip())  # InviteError is a ValueError: "email: reason"
    if role not in ROLES:
        raise StaffError(f"role: must be one of {', '.join(ROLES)}")
    check_password_rule(password)
    existing = db.session.scalar(sa.select(User.email).where(User.email == email))
    if existing is not None:
        raise StaffError(
            f"email: a user {existing} already exists (letter case does not tell users apart)"
        )
    user = User(email=email, role=role)
    user.set_password(password)
    db.session.add(user)
    return user


def set_password(user: User, password: str) -> None:
    """The user's own password, from their link; every earlier session ends."""
    check_password_rule(password)
    user.set_password(password)
    _end_sessions(user)
    audit_log.record("user.password_set", user=user, target=f"user:{user.id}")


def reset_password(user: User) -> None:
    """The old password stops working and every session ends; a new link is sent."""
    if not user.active:
        raise StaffError("user: reactivate the user before resetting their password")
    _unusable_password(user)
    _end_sessions(user)
    audit_log.record("user.password_reset", target=f"user:{user.id}")


def active_admins(excluding: User | None = None) -> int:
    query = sa.select(sa.func.count()).where(User.active.is_(True), User.role.in_(ADMIN_ROLES))
    if excluding is not None:
        query = query.where(User.id != excluding.id)
    return db.session.scalar(query) or 0


def keep_an_admin(user: User, doing: str) -> None:
    """Refuse a change that would leave no active admin (nobody could manage staff)."""
    if user.active and user.role in ADMIN_ROLES and active_admins(excluding=user) == 0:
        raise StaffError(f"user: {user.email} is the last active admin and cannot be {doing}")


def change_role(user: User, role: str) -> None:
    if role not in ROLES:
        raise StaffError(f"role: must be one of {', '.join(ROLES)}")
    if role == user.role:
        return
    if role not in ADMIN_ROLES:
        keep_an_admin(user, f"made {role}")
    before, user.role = user.role, role
    audit_log.record("user.role", target=f"user:{user.id}", detail={"from": before, "to": role})


def deactivate(user: User) -> None:
    """No more sign-ins, and every session ends; their cases and history stay theirs."""
    if not user.active:
        return
    keep_an_admin(user, "deactivated")
    user.active = False
    _end_sessions(user)
    audit_log.record("user.deactivate", target=f"user:{user.id}")


def reactivate(user: User) -> None:
    if user.active:
        return
    user.active = True
    audit_log.record("user.reactivate", target=f"user:{user.id}")


def all_users() -> t.Sequence[User]:
    return db.session.scalars(sa.select(User).order_by(User.active.desc(), User.email)).all()


def find_user(user_id: int) -> User | None:
    """The user with that id; None also for an id past PostgreSQL's integer (no error)."""
    return db.session.get(User, user_id) if 0 < user_id < 2**31 else None
