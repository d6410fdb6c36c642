"""The JSON API at ``/api/v1`` for other systems: post events, record bounces.

The OpenAPI document below is the single description of the API: it is served at
``/api/v1/openapi.json`` and its schemas are what requests are checked against (with
``jsonschema``), so the documentation and the validation cannot drift apart. Every answer
is JSON, errors included: ``{"error": "...", "field": "contact.email"}``.

Clients authenticate with an API key sent as ``Authorization: Bearer <key>``. Keys are
made with ``flask --app loyalty api-key create --name N``, shown once and stored as a
SHA-256 hash (a key is 256 random bits, so a plain hash is enough to make a copy of the
database useless for calling the API).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import typing as t
from decimal import ROUND_HALF_UP, Decimal

import click
import sqlalchemy as sa
from flask import Blueprint, Response, current_app, g, request
from flask.cli import AppGroup
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from .db import db
from .invitations import EventIn, Invitee, InviteError, mark_bounced, record_event
from .models import EVENT_KINDS, LANGUAGES, SEGMENTS, ApiKey, Invitation, utcnow

if t.TYPE_CHECKING:
    from flask import Flask

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)

# --- The OpenAPI document ----------------------------------------------------------------

#: No control characters (CR/LF would let a name forge email headers), at least one
#: visible character. Written with the characters themselves, which every regex engine
#: reads alike; lone surrogates (not storable as UTF-8) are refused in :func:`_json_body`.
_ALLOWED = "[^\x00-\x1f\x7f]"
_TEXT = f"^{_ALLOWED}*[^\\s\x00-\x1f\x7f]{_ALLOWED}*$"
_MONEY = {"type": "number", "minimum": 0, "maximum": 999_999_999_999}


def _text(max_length: int, description: str) -> dict[str, t.Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": _TEXT,
        "description": description,
    }


def _error_response(description: str) -> dict[str, t.Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "413": {"$ref": "#/components/responses/TooLarge"},
    "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
    "422": {"$ref": "#/components/responses/Invalid"},
}

OPENAPI: dict[str, t.Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Loyalty API",
        "version": "1",
        "description": "Post sales, deliveries, closed support tickets and renewals; "
        "Loyalty schedules the surveys they trigger, within its throttling rules. "
        'Every error is JSON: {"error": "...", "field": "contact.email"}.',
    },
    "servers": [{"url": PREFIX}],
    "security": [{"apiKey": []}],
    "paths": {
        "/events": {
            "post": {
                "operationId": "postEvent",
                "summary": "Record an event; schedule the surveys it triggers.",
                "description": "Idempotent on external_id: posting the same event again "
                "changes nothing and answers 200 with what the first post made.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Event"}}
                    },
                },
                "responses": {
                    "201": {
                        "description": "Recorded; the surveys it triggered, scheduled or "
                        "skipped with the reason.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/EventResult"}
                            }
                        },
                    },
                    "200": {
                        "description": "An event with this external_id was recorded before.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/EventResult"}
                            }
                        },
                    },
                    **_ERRORS,
                },
            }
        },
        "/bounces": {
            "post": {
                "operationId": "postBounce",
                "summary": "Record that mail to a contact bounces; nothing is sent to it again.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Bounce"}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "Recorded (the earliest bounce is kept).",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/BounceResult"}
                            }
                        },
                    },
                    "404": _error_response("No contact has this email address."),
                    **_ERRORS,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "A key from `flask --app loyalty api-key create --name N`.",
            }
        },
        "schemas": {
            "Event": {
                "type": "object",
                "additionalProperties": False,
                "required": ["external_id", "kind", "occurred_at", "account", "contact"],
                "properties": {
                    "external_id": _text(
                        100,
                        "Your system's id for the event; posting the "
                        "same id again changes nothing.",
                    ),
                    "kind": {"type": "string", "enum": list(EVENT_KINDS)},
                    "occurred_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "RFC 3339 with a time zone, e.g. 2026-11-22T14:45:00Z.",
                    },
                    "account": {"$ref": "#/components/schemas/Account"},
                    "contact": {"$ref": "#/components/schemas/Contact"},
                    "amount": {**_MONEY, "description": "What the sale was worth."},
                    "product": _text(200, "What was sold or delivered."),
                },
            },
            "Account": {
                "type": "object",
                "additionalProperties": False,
                "required": ["external_ref", "name", "segment"],
                "properties": {
                    "external_ref": _text(100, "Your system's id for the customer."),
                    "name": _text(200, "The company's or person's name."),
                    "segment": {"type": "string", "enum": list(SEGMENTS)},
                    "annual_value": {**_MONEY, "description": "Yearly revenue from it."},
                },
            },
            "Contact": {
                "type": "object",
                "additionalProperties": False,
                "required": ["email", "name", "language"],
                "properties": {
                    "email": {"type": "string", "format": "email", "maxLength": 254},
                    "name": _text(200, "Used in the email's greeting."),
                    "language": {"type": "string", "enum": list(LANGUAGES)},
                },
            },
            "Bounce": {
                "type": "object",
                "additionalProperties": False,
                "required": ["email"],
                "properties": {
                    "email": {"type": "string", "format": "email", "maxLength": 254},
                    "bounced_at": {"type": "string", "format": "date-time"},
                },
            },
            "Invitation": {
                "type": "object",
                "required": ["id", "survey", "status", "skip_reason", "due_at", "expires_at"],
                "properties": {
                    "id": {"type": "integer"},
                    "survey": {"type": "string"},
                    "status": {
                        "type": "string",
                        "enum": ["scheduled", "sending", "sent", "failed", "skipped"],
                    },
                    "skip_reason": {"type": ["string", "null"]},
                    "due_at": {"type": "string", "format": "date-time"},
                    "expires_at": {"type": "string", "format": "date-time"},
                },
            },
            "EventResult": {
                "type": "object",
                "required": ["event_id", "external_id", "created", "invitations"],
                "properties": {
                    "event_id": {"type": "integer"},
                    "external_id": {"type": "string"},
                    "created": {"type": "boolean"},
                    "invitations": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Invitation"},
                    },
                },
            },
            "BounceResult": {
                "type": "object",
                "required": ["contact_id", "email", "bounced_at"],
                "properties": {
                    "contact_id": {"type": "integer"},
                    "email": {"type": "string"},
                    "bounced_at": {"type": "string", "format": "date-time"},
                },
            },
            "Error": {
                "type": "object",
                "required": ["error", "field"],
                "properties": {
                    "error": {"type": "string"},
                    "field": {
                        "type": ["string", "null"],
                        "description": "The input field at fault, dotted: contact.email.",
                    },
                },
            },
        },
        "responses": {
            "BadRequest": _error_response("The body is not UTF-8 JSON."),
            "Unauthorized": _error_response("No API key, or an unknown or revoked one."),
            "TooLarge": _error_response("The body is larger than MAX_CONTENT_LENGTH."),
            "UnsupportedMediaType": _error_response("The body is not application/json."),
            "Invalid": _error_response("The body breaks a rule; `field` names where."),
        },
    },
}

# --- Checking requests against it --------------------------------------------------------

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_formats = FormatChecker(formats=())


@_formats.checks("date-time", raises=(ValueError, OverflowError))
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        raise ValueError("not RFC 3339")
    dt.datetime.fromisoformat(value.upper()).astimezone(dt.UTC)
    return True


@_formats.checks("email", raises=ValueError)
def _is_email(value: object) -> bool:
    from email_validator import EmailNotValidError, validate_email

    if not isinstance(value, str):
        return True
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return True


_REGISTRY = Registry().with_resource(
    "urn:loyalty:api", Resource.from_contents(OPENAPI, default_specification=DRAFT202012)
)


def _validator(name: str) -> Draft202012Validator:
    schema = {"$ref": f"urn:loyalty:api#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=_REGISTRY, format_checker=_formats)


_VALIDATORS = {name: _validator(name) for name in ("Event", "Bounce")}


class Invalid(Exception):
    """A request body breaks a rule; answered 422 with the field named."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def check(schema: str, data: t.Any) -> None:
    """Raise :class:`Invalid` for the most telling way ``data`` breaks ``schema``."""
    error = best_match(_VALIDATORS[schema].iter_errors(data))
    if error is not None:
        raise Invalid(*_describe(error))


def _describe(error: ValidationError) -> tuple[str | None, str]:
    path = [str(p) for p in error.absolute_path]
    instance, kind, value = error.instance, error.validator, error.validator_value
    if kind == "required":
        missing = next(k for k in value if k not in instance)
        return ".".join([*path, missing]), "is required"
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = sorted(k for k in instance if k not in known)[0]
        return ".".join([*path, extra]), "unknown field"
    field = ".".join(path) or None
    if kind == "type":
        if not path:
            return None, "the body must be a JSON object"
        kinds = " or ".join(value) if isinstance(value, list) else value
        return field, f"must be {'an' if kinds[0] in 'aeiou' else 'a'} {kinds}"
    if kind == "enum":
        return field, f"must be one of {', '.join(map(str, value))}"
    if kind == "minLength":
        return field, "must not be empty"
    if kind == "maxLength":
        return field, f"at most {value} characters"
    if kind == "pattern":
        return field, "must have visible text and no line breaks or control characters"
    if kind in ("minimum", "maximum"):
        return field, f"must be at {'least' if kind == 'minimum' else 'most'} {value}"
    if kind == "format" and value == "date-time":
        return field, "must be a date and time with a time zone, e.g. 2026-11-22T14:45:00Z"
    if kind == "format" and value == "email":
        cause = f": {error.cause}" if error.cause else ""
        return field, f"is not a valid email address{cause}"
    return field, error.message


def parse_datetime(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.upper()).astimezone(dt.UTC)


def money(value: float | int | None) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


#: where an :class:`~loyalty.invitations.InviteError` field is found in an event
_EVENT_FIELDS = {
    "email": "contact.email",
    "name": "contact.name",
    "language": "contact.language",
    "account": "account.name",
    "segment": "account.segment",
}


def event_from_json(data: t.Any) -> EventIn:
    """A checked event; raises :class:`Invalid` naming the first field at fault."""
    check("Event", data)
    account, contact = data["account"], data["contact"]
    return EventIn(
        external_id=data["external_id"],
        kind=data["kind"],
        occurred_at=parse_datetime(data["occurred_at"]),
        invitee=Invitee(
            email=contact["email"],
            name=contact["name"],
            account=account["name"],
            segment=account["segment"],
            language=contact["language"],
            annual_value=money(account.get("annual_value")),
            account_ref=account["external_ref"],
        ),
        amount=money(data.get("amount")),
        product=data.get("product"),
    )


def invite_error(exc: InviteError, fields: t.Mapping[str, str]) -> Invalid:
    field, _, message = str(exc).partition(": ")
    return Invalid(fields.get(field, field), message)


# --- Requests ----------------------------------------------------------------------------


def error(status: int, message: str, field: str | None = None, **headers: str) -> Response:
    response = current_app.json.response({"error": message, "field": field})
    response.status_code = status
    response.headers.update(headers)
    return response


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


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@bp.before_request
def _authenticate() -> Response | None:
    """Every endpoint but the document needs a live API key."""
    if request.endpoint == "api.openapi":
        return None
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="loyalty"'}
    if scheme.lower() != "bearer" or not key.strip():
        return error(401, "send an API key as 'Authorization: Bearer <key>'", **challenge)
    api_key = db.session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == hash_key(key.strip())))
    if api_key is None or api_key.revoked_at is not None:
        return error(401, "unknown or revoked API key", **challenge)
    now = utcnow()
    # Written at most every few minutes, so a busy client does not make every request a write.
    if api_key.last_used_at is None or now - api_key.last_used_at > dt.timedelta(minutes=5):
        api_key.last_used_at = now
        db.session.commit()
    g.api_key_id = api_key.id
    return None


@bp.errorhandler(_Refused)
def _refused(exc: _Refused) -> Response:
    return error(exc.status, exc.message)


@bp.errorhandler(Invalid)
def _invalid(exc: Invalid) -> Response:
    db.session.rollback()
    return error(422, exc.message, exc.field)


def _http_error(exc: HTTPException) -> Response:
    """413 and the rest as JSON, never the HTML error pages."""
    headers = {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    if (exc.code or 500) >= 500:
        db.session.rollback()
    return error(exc.code or 500, exc.description or exc.name, **headers)


# Flask prefers the app's handlers for a status code over a blueprint's class-based one,
# so the codes the app has pages for are named here too.
bp.register_error_handler(HTTPException, _http_error)
for _code in (400, 403, 404, 405, 413, 500):
    bp.register_error_handler(_code, _http_error)


def _routing_error() -> Response | None:
    """Unknown paths and wrong methods under /api/ get JSON too; they fail before any
    blueprint is chosen, so the blueprint's own handlers never see them."""
    exc = request.routing_exception
    if (
        isinstance(exc, HTTPException)
        and (exc.code or 0) >= 400
        and (request.path == PREFIX or request.path.startswith(PREFIX + "/"))
    ):
        return _http_error(exc)
    return None


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


@bp.post("/events")
def post_event():
    """Record an event once and schedule the surveys it triggers: 201, or 200 if known."""
    data = event_from_json(_json_body())
    # Two identical posts at once: one insert wins, the other fails on the unique external
    # id (or on a new account or contact), rolls back and finds what the winner stored.
    for attempt in range(3):
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
        except InviteError as exc:
            raise invite_error(exc, _EVENT_FIELDS) from None
        except IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise
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
        return error(404, "no contact has this email address", "email")
    db.session.commit()
    return {
        "contact_id": contact.id,
        "email": contact.email,
        "bounced_at": _iso(contact.bounced_at),
    }


# --- API keys ----------------------------------------------------------------------------


def create_key(name: str) -> tuple[ApiKey, str]:
    """A new key; the clear key is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise ValueError("name: 1 to 100 characters on one line")
    key = "loy_" + secrets.token_urlsafe(32)
    api_key = ApiKey(name=name, prefix=key[:12], key_hash=hash_key(key))
    db.session.add(api_key)
    return api_key, key


def revoke_key(id_or_prefix: str) -> ApiKey | None:
    query = sa.select(ApiKey).where(ApiKey.prefix == id_or_prefix)
    if id_or_prefix.isdigit():
        query = sa.select(ApiKey).where(ApiKey.id == int(id_or_prefix))
    api_key = db.session.scalar(query)
    if api_key is not None and api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
    return api_key


key_cli = AppGroup("api-key", help="Keys other systems use to call /api/v1.")


@key_cli.command("create")
@click.option("--name", required=True, help="Who uses it, e.g. 'webshop'.")
def key_create(name: str) -> None:
    """Create a key and print it; it is shown this once."""
    try:
        api_key, key = create_key(name)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    db.session.commit()
    click.echo(key)
    click.echo(f"Key {api_key.id} ({api_key.name}) created; it is not shown again.", err=True)


@key_cli.command("list")
def key_list() -> None:
    """List keys: id, prefix, name, last use, revoked."""
    for k in db.session.scalars(sa.select(ApiKey).order_by(ApiKey.id)):
        used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never used"
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        click.echo(f"{k.id}\t{k.prefix}…\t{k.name}\t{used}\t{state}")


@key_cli.command("revoke")
@click.argument("key_id")
def key_revoke(key_id: str) -> None:
    """Revoke a key by its id or prefix; requests with it get 401 from now on."""
    api_key = revoke_key(key_id)
    if api_key is None:
        raise click.UsageError(f"no API key with id or prefix {key_id!r}")
    db.session.commit()
    click.echo(f"Key {api_key.id} ({api_key.name}) is revoked.")


def init_app(app: Flask) -> None:
    app.before_request(_routing_error)
    app.cli.add_command(key_cli)
