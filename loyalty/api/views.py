"""``/api/v1`` for other systems: post events, record bounces, read the OpenAPI document.

Every answer is JSON, errors included: ``{"error": "...", "field": "contact.email"}`` (the
shape is :func:`loyalty.errors.json_error`). Requests are checked against the schemas of the
served document (:mod:`.openapi`); keys are checked by :mod:`.keys`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
import typing as t

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import metrics, periods
from ..accounts import rollup
from ..accounts.services import (
    AccountConflict,
    InviteError,
    find_account,
    mark_bounced,
    mark_churned,
    reactivate,
)
from ..dashboard import queries, rollups
from ..db import db
from ..errors import json_error
from ..models import Account, HealthWarning, Invitation
from ..outreach.events import EVENT_FIELDS, event_from_json, invite_error, record_event
from . import PREFIX
from .keys import authenticate
from .openapi import OPENAPI, Invalid, check, parse_datetime

bp = Blueprint("api", __name__, url_prefix=PREFIX)


def _json_body() -> t.Any:
    """The request body as JSON; the errors say what is wrong with it."""
    if request.mimetype != "application/json":
        raise _Refused(415, "send the body as application/json")
    raw = request.get_data(cache=False)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise _Refused(400, "the body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise _Refused(400, f"the body is not valid JSON: {exc}") from None
    _refuse_lone_surrogates(data, [])
    return data


def _refuse_lone_surrogates(value: t.Any, path: list[str]) -> None:
    """JSON may escape half a UTF-16 pair (``"\\ud800"``); no database stores that."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise Invalid(
                ".".join(path) or None, "contains an unpaired surrogate (\\ud800-\\udfff)"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_lone_surrogates(key, path)
            _refuse_lone_surrogates(item, [*path, str(key)])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_lone_surrogates(item, [*path, str(index)])


_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@bp.before_request
def _authenticate() -> Response | None:
    """Every endpoint but the document needs a live API key."""
    if request.endpoint == "api.openapi":
        return None
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="loyalty"'}
    if scheme.lower() != "bearer" or not key.strip():
        return json_error(401, "send an API key as 'Authorization: Bearer <key>'", **challenge)
    api_key = authenticate(key.strip())
    if api_key is None:
        return json_error(401, "unknown or revoked API key", **challenge)
    g.api_key_id = api_key.id
    return None


@bp.errorhandler(_Refused)
def _refused(exc: _Refused) -> Response:
    return json_error(exc.status, exc.message)


@bp.errorhandler(Invalid)
def _invalid(exc: Invalid) -> Response:
    db.session.rollback()
    return json_error(422, exc.message, exc.field)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document for this API."""
    return OPENAPI


def _invitation_json(invitation: Invitation) -> dict[str, t.Any]:
    return {
        "id": invitation.id,
        "survey": invitation.survey,
        "status": invitation.status,
        "skip_reason": invitation.skip_reason,
        "due_at": _iso(invitation.due_at),
        "expires_at": _iso(invitation.expires_at),
    }


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


#: tries of one event against twins posted at the same moment (PostgreSQL may deadlock them)
_ATTEMPTS = 6


@bp.post("/events")
def post_event():
    """Record an event once and schedule the surveys it triggers: 201, or 200 if known."""
    data = event_from_json(_json_body())
    # Two identical posts at once: one insert wins, the other fails on the unique external
    # id (or on a new account or contact), rolls back and finds what the winner stored.
    for attempt in range(_ATTEMPTS):
        try:
            recorded = record_event(data)
            db.session.flush()
            body = {  # before the commit, which would expire what it reads
                "event_id": recorded.event.id,
                "external_id": recorded.event.external_id,
                "created": recorded.created,
                "invitations": [_invitation_json(i) for i in recorded.invitations],
            }
            db.session.commit()
            break
        except AccountConflict as exc:
            db.session.rollback()
            invalid = invite_error(exc, EVENT_FIELDS)
            return json_error(409, invalid.message, invalid.field)
        except InviteError as exc:
            raise invite_error(exc, EVENT_FIELDS) from None
        except (IntegrityError, OperationalError):  # a twin's insert, or a deadlock with it
            db.session.rollback()
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # twins apart, not in step
    return body, 201 if recorded.created else 200


@bp.post("/bounces")
def post_bounce():
    """Record that mail to a contact bounces."""
    data = _json_body()
    check("Bounce", data)
    at = parse_datetime(data["bounced_at"]) if "bounced_at" in data else None
    try:
        contact = mark_bounced(data["email"], at=at)
    except InviteError as exc:
        raise invite_error(exc, {}) from None
    if contact is None:
        return json_error(404, "no contact has this email address", "email")
    db.session.commit()
    assert contact.bounced_at is not None  # mark_bounced sets it when it was unset
    return {
        "contact_id": contact.id,
        "email": contact.email,
        "bounced_at": _iso(contact.bounced_at),
    }


# --- account health ------------------------------------------------------------------------


def _account_or_404(external_ref: str) -> Account:
    account = find_account(external_ref=external_ref)
    if account is None:
        raise _Refused(404, "no account has this external reference")
    return account


def _health_json(account: Account) -> dict[str, t.Any]:
    warnings = db.session.scalars(
        sa.select(HealthWarning)
        .where(HealthWarning.account_id == account.id, HealthWarning.status != "resolved")
        .order_by(HealthWarning.raised_at)
    )
    return {
        "external_ref": account.external_ref,
        "name": account.name,
        "score": account.health_score,
        "band": account.health_band,
        "computed_at": _iso(account.health_at) if account.health_at else None,
        "churned_at": _iso(account.churned_at) if account.churned_at else None,
        "contributions": rollup.contributions(account.health_contributions),
        "open_warnings": [
            {
                "kind": w.kind,
                "raised_at": _iso(w.raised_at),
                "reasons": rollup.warning_reasons(w),
                "status": w.status,
            }
            for w in warnings
        ],
    }


@bp.get("/accounts/<path:external_ref>/health")
def get_health(external_ref: str):
    """An account's health today, with why and its open warnings."""
    return _health_json(_account_or_404(external_ref))


@bp.put("/accounts/<path:external_ref>/churn")
def put_churn(external_ref: str):
    """Record that the customer left."""
    account = _account_or_404(external_ref)
    data = _json_body()
    check("Churn", data)
    try:
        mark_churned(account, parse_datetime(data["churned_at"]))
    except InviteError as exc:
        raise invite_error(exc, {}) from None
    db.session.commit()
    return _health_json(account)


@bp.delete("/accounts/<path:external_ref>/churn")
def delete_churn(external_ref: str):
    """The customer is back."""
    account = _account_or_404(external_ref)
    reactivate(account)
    db.session.commit()
    return _health_json(account)


@bp.get("/metrics/<metric>")
def get_metric(metric: str):
    """A metric's trend, point by point, from the rollups the dashboard reads."""
    if metric not in metrics.NAMED:
        raise _Refused(404, f"no such metric; the metrics are {', '.join(metrics.NAMED)}")
    empty = next((name for name, value in request.args.items() if not value.strip()), None)
    if empty is not None:  # pages send "" for "all"; an API client leaves the parameter out
        raise _Refused(400, f"{empty}: must not be empty; leave it out for all")
    tz = rollups.tz()
    try:
        grain = periods.parse_grain(request.args.get("grain"))
        period = periods.parse(
            request.args, today=periods.today(tz), default_days=queries.DEFAULT_DAYS
        )
        filters = queries.parse_filters(request.args)
    except (periods.PeriodError, queries.FilterError) as exc:
        raise _Refused(400, str(exc)) from None
    rollups.refresh_stale()
    min_n = current_app.config["MIN_N"]
    (points,) = queries.trend(metric, grain, period, filters, min_n=min_n).values()
    return {
        "metric": metric,
        "grain": grain,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "min_n": min_n,
        "points": [
            {
                "period": p.name,
                "start": p.start.isoformat(),
                "n": p.reading.n,
                "value": None if p.reading.value is None else round(p.reading.value, 2),
                "moe": None if p.reading.moe is None else round(p.reading.moe, 2),
                "low": None if (b := p.reading.bounds) is None else round(b[0], 2),
                "high": None if b is None else round(b[1], 2),
                "low_confidence": p.reading.low_confidence,
            }
            for p in points
        ],
    }
