"""Staff sign-in with Flask-Login, and the role check every staff page uses."""

from __future__ import annotations

import functools
import hmac
import secrets
import time
import typing as t
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length

from . import checks, lockout
from .accounts.services import InviteError, normalise_email
from .admin import staff
from .admin.staff import create_user  # noqa: F401 - tests and benchmarks import it from here
from .audit import log as audit_log
from .db import db
from .models import ROLES, User

if t.TYPE_CHECKING:
    from flask import Flask

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to see this page."


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.before_request(_idle_timeout)


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    """The user of a session cookie: its id and token must match (a signed-out one no)."""
    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or len(user_id) > 9 or not token:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.session_token or not hmac.compare_digest(user.session_token, token):
        return None
    return user


@functools.cache
def _dummy_hash() -> str:
    """A hash to check unknown addresses against, so they take as long as real ones."""
    return generate_password_hash(secrets.token_urlsafe(16))


def _idle_timeout() -> t.Any:
    """Sign staff out after ``STAFF_IDLE_MINUTES`` without a request."""
    if "_user_id" not in session:  # nobody signed in (a customer): no user to load
        return None
    if not current_user.is_authenticated:
        return None
    now = int(time.time())
    seen = session.get("seen")
    if isinstance(seen, int) and now - seen > 60 * int(current_app.config["STAFF_IDLE_MINUTES"]):
        logout_user()
        session.clear()
        flash("You were signed out after a while without activity. Please sign in again.")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    session["seen"] = now
    return None


def role_required(*roles: str) -> t.Callable:
    """Only signed-in staff with one of ``roles`` get through; others get 403."""
    assert all(r in ROLES for r in roles), roles

    def decorator(view: t.Callable) -> t.Callable:
        @functools.wraps(view)
        def wrapped(*args: t.Any, **kwargs: t.Any) -> t.Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def _signs_in_as(typed: str) -> str:
    """The stored address a typed one stands for: the one normaliser, so any letter case
    signs in (a typo that is no address at all simply matches nobody)."""
    if not checks.is_one_line(typed):  # a NUL byte would be an error in PostgreSQL
        return ""
    try:
        return normalise_email(typed)
    except InviteError:
        return typed.strip().lower()


def address_hint(email: str) -> str:
    """A short keyed hash of a typed sign-in address, for the log: the same address gives the
    same hint, so repeated tries at one address show, yet the log holds no address (an
    unknown one is personal data) and, keyed with the secret, none can be guessed back."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"sign-in|" + email.encode(), "sha256").hexdigest()[:10]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=200)])


def _safe_next(target: str | None) -> str:
    """Only follow ``next`` within this site, so the login page cannot redirect elsewhere."""
    parts = urlsplit(target or "")
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")  # "//evil.example" is another site to a browser
        and "\\" not in target
        and not parts.scheme
        and not parts.netloc
        and checks.is_one_line(target)
    ):
        return target
    return start_page()


def start_page() -> str:
    """Where a signed-in person starts: executives on the dashboard, the others on the
    latest responses."""
    if getattr(current_user, "role", None) == "executive":
        return url_for("dashboard.index")
    return url_for("responses.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with email and password.

    An unknown address is refused like a wrong password, as slowly, and locks like one
    (``loyalty.lockout``), so no answer tells whether an address belongs to staff."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email = _signs_in_as(form.email.data or "")
        hint = address_hint(email)
        address, client = lockout.keys(hint, request.remote_addr)
        wait = lockout.locked_for(address, client)
        attempt = None
        if not wait:  # counted before the password is checked, so none slips past the limit
            attempt = lockout.count_attempt(address, client)
            wait = lockout.locked_for(address, client, counted=True)
        if wait:
            audit_log.record("sign_in.locked", detail={"address_hint": hint})
            db.session.commit()
            current_app.logger.warning(
                "sign-in locked: address hint %s, from %s", hint, request.remote_addr
            )
            minutes = max(1, -(-wait // 60))
            flash(
                f"Too many failed sign-ins. Try again in {minutes} minute"
                f"{'' if minutes == 1 else 's'}.",
                "error",
            )
            return render_template("auth/login.html", form=form), 429, {"Retry-After": str(wait)}
        assert attempt is not None
        user = db.session.scalar(sa.select(User).where(User.email == email)) if email else None
        password = form.password.data or ""
        if user is None:
            check_password_hash(_dummy_hash(), password)  # as slow as a real address
        elif user.active and user.check_password(password):
            lockout.succeeded(attempt)
            session.clear()  # a new session: nothing set before sign-in is carried over
            _renew_csrf()
            session.permanent = True  # PERMANENT_SESSION_LIFETIME caps it
            login_user(user)
            session["seen"] = int(time.time())
            audit_log.record("sign_in", user=user, detail={"role": user.role})
            db.session.commit()  # the session token, made on first sign-in
            current_app.logger.info(
                "sign-in: staff user %s (%s) from %s", user.id, user.role, request.remote_addr
            )
            return redirect(_safe_next(request.args.get("next")))
        failures = attempt.failures
        reason = "unknown address" if user is None else "wrong password or inactive staff user"
        audit_log.record(
            "sign_in.failed",
            user=user,  # a known address: whose account was tried (never shown to the client)
            detail={"address_hint": hint, "reason": reason},
        )
        db.session.commit()
        current_app.logger.warning(
            "sign-in refused: %s, address hint %s, from %s", reason, hint, request.remote_addr
        )
        lockout.slow_down(failures)
        flash("Wrong email or password.", "error")
        status = 401
    elif request.method == "POST":
        status = 400
        current_app.logger.warning(
            "sign-in refused: form not valid (%s), from %s",
            ", ".join(sorted(form.errors)),
            request.remote_addr,
        )
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    """Sign out everywhere: every session of this user ends (each of their session cookies,
    on every device, and any copy of one, carries the token renewed here)."""
    if current_user.is_authenticated:
        audit_log.record("sign_out", detail={"sessions": "all"})
        current_user.session_token = secrets.token_urlsafe(32)
        db.session.commit()
    logout_user()
    session.clear()
    _renew_csrf()
    return redirect(url_for("auth.login"))


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[InputRequired(), Length(max=200)])
    confirm = PasswordField("The same password again", validators=[InputRequired()])


@bp.route("/password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """A staff user chooses their password from the link an admin had emailed to them (an
    invitation or a reset). The link works once: the new password makes it invalid."""
    user = staff.user_for_token(token)
    if user is None:
        return render_template("auth/set_password.html", form=None), 404
    form = SetPasswordForm()
    status = 200
    if form.validate_on_submit():
        password = form.password.data or ""
        if password != form.confirm.data:
            form.confirm.errors = ["The two passwords differ."]
            status = 400
        else:
            try:
                staff.set_password(user, password)
            except staff.StaffError as exc:
                form.password.errors = [str(exc).partition(": ")[2]]
                status = 400
            else:
                db.session.commit()
                logout_user()
                session.clear()
                _renew_csrf()
                flash("Your password is set. Sign in with it.")
                return redirect(url_for("auth.login"), 303)
    elif request.method == "POST":
        status = 400
    return render_template("auth/set_password.html", form=form, user=user), status


def _renew_csrf() -> None:
    """A new anti-forgery token from the next page on (Flask-WTF caches it in ``g`` too)."""
    session.pop("csrf_token", None)
    g.pop("csrf_token", None)
