"""The OpenAPI 3.1 document of ``/api/v1`` and the request checks built from it.

The document is the single description of the API: it is served at
``/api/v1/openapi.json`` and its schemas are what requests are checked against (with
``jsonschema``), so the documentation and the validation cannot drift apart. The few rules a
schema cannot state are checked in code and answered the same way (:class:`Invalid`).
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ..checks import CONTROL, MAX_MONEY
from ..metrics import NAMED as NAMED_METRICS
from ..models import EVENT_KINDS, HEALTH_BANDS, LANGUAGES, SEGMENTS, WARNING_KINDS
from ..periods import GRAINS
from . import PREFIX

#: No control characters (CR/LF would let a name forge email headers), at least one
#: visible character. Written with the characters themselves, which every regex engine
#: reads alike; lone surrogates (not storable as UTF-8) are refused in :func:`_json_body`.
_ALLOWED = f"[^{CONTROL}]"
_TEXT = f"^{_ALLOWED}*[^\\s{CONTROL}]{_ALLOWED}*$"
_MONEY = {"type": "number", "minimum": 0, "maximum": float(MAX_MONEY)}


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


def _query(name: str, schema: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_REF = {
    "name": "external_ref",
    "in": "path",
    "required": True,
    "description": "The account's reference in the calling system.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
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
                    "409": _error_response(
                        "The account's name belongs to another account (another external_ref)."
                    ),
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
        "/accounts/{external_ref}/health": {
            "get": {
                "operationId": "getAccountHealth",
                "summary": "An account's health today: score, band, why, open warnings.",
                "parameters": [_REF],
                "responses": {
                    "200": {
                        "description": "Today's health (score null until first computed).",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                        },
                    },
                    "404": _error_response("No account has this external reference."),
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                },
            }
        },
        "/accounts/{external_ref}/churn": {
            "put": {
                "operationId": "markChurned",
                "summary": "Record that the customer left (on a day not in the future).",
                "parameters": [_REF],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Churn"}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "Recorded; the account leaves the live views.",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                        },
                    },
                    "404": _error_response("No account has this external reference."),
                    **_ERRORS,
                },
            },
            "delete": {
                "operationId": "reactivate",
                "summary": "The customer is back: the account is live again.",
                "parameters": [_REF],
                "responses": {
                    "200": {
                        "description": "Reactivated.",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                        },
                    },
                    "404": _error_response("No account has this external reference."),
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                },
            },
        },
        "/metrics/{metric}": {
            "get": {
                "operationId": "getMetric",
                "summary": "A metric's trend: one point per week, month or quarter.",
                "description": "The numbers the dashboard shows, from the same rollups: each "
                "point with its n, its 95% margin of error and whether n is below the "
                "minimum (MIN_N). Buckets begin at local midnight in the configured zone.",
                "parameters": [
                    {
                        "name": "metric",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(NAMED_METRICS)},
                    },
                    _query("grain", {"type": "string", "enum": list(GRAINS)}),
                    _query("from", {"type": "string", "format": "date"}),
                    _query("to", {"type": "string", "format": "date"}),
                    _query("segment", {"type": "string", "enum": list(SEGMENTS)}),
                    _query("language", {"type": "string", "enum": list(LANGUAGES)}),
                    _query("survey", {"type": "string", "maxLength": 64}),
                    _query("owner", {"type": "string", "description": "a staff e-mail"}),
                    _query(
                        "account",
                        {"type": "string", "description": "one account's number (its id)"},
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "The points, oldest first, empty buckets included.",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Trend"}}
                        },
                    },
                    "400": _error_response("A parameter cannot be read; the error says which."),
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "404": _error_response("No metric has this name."),
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
            "Trend": {
                "type": "object",
                "required": ["metric", "grain", "from", "to", "min_n", "points"],
                "properties": {
                    "metric": {"type": "string"},
                    "grain": {"type": "string"},
                    "from": {"type": "string", "format": "date"},
                    "to": {"type": "string", "format": "date"},
                    "min_n": {"type": "integer"},
                    "points": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["period", "start", "n", "value", "moe", "low_confidence"],
                            "properties": {
                                "period": {"type": "string"},
                                "start": {"type": "string", "format": "date"},
                                "n": {"type": "integer", "minimum": 0},
                                "value": {"type": ["number", "null"]},
                                "moe": {"type": ["number", "null"]},
                                "low": {
                                    "type": ["number", "null"],
                                    "description": "the 95% interval's lower end (a share's "
                                    "Wilson interval, an NPS's cut at -100)",
                                },
                                "high": {
                                    "type": ["number", "null"],
                                    "description": "the 95% interval's upper end",
                                },
                                "low_confidence": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
            "Churn": {
                "type": "object",
                "additionalProperties": False,
                "required": ["churned_at"],
                "properties": {"churned_at": {"type": "string", "format": "date-time"}},
            },
            "Health": {
                "type": "object",
                "required": ["external_ref", "name", "score", "band", "churned_at"],
                "properties": {
                    "external_ref": {"type": "string"},
                    "name": {"type": "string"},
                    "score": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
                    "band": {"type": ["string", "null"], "enum": [*HEALTH_BANDS, None]},
                    "computed_at": {"type": ["string", "null"], "format": "date-time"},
                    "churned_at": {"type": ["string", "null"], "format": "date-time"},
                    "contributions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "signal": {"type": "string"},
                                "points": {"type": "number"},
                                "detail": {"type": "string"},
                            },
                        },
                    },
                    "open_warnings": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "kind": {"type": "string", "enum": list(WARNING_KINDS)},
                                "raised_at": {"type": "string", "format": "date-time"},
                                "reasons": {"type": "array", "items": {"type": "string"}},
                                "status": {"type": "string"},
                            },
                        },
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


_VALIDATORS = {name: _validator(name) for name in ("Event", "Bounce", "Churn")}


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
    """An RFC 3339 time the schema accepted, as aware UTC."""
    return dt.datetime.fromisoformat(value.upper()).astimezone(dt.UTC)
