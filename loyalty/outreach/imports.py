"""CSV imports: accounts, contacts, events, and survey results from another tool.

A file is read and checked whole before anything is written: every bad row is reported
with its line number, column and reason, and then nothing is imported. A clean file is
written in one transaction, so an import that fails or is interrupted half-way leaves
nothing behind. Every row has a key (an account's external ref, a contact's email, an
event's external id, a response's survey + email + time), so running the same file again
changes nothing.

Events go through the same checks (the API's schema) and the same scheduling rules as
events posted to the API; they are applied oldest first, so the throttling rules decide
as they would have if the events had arrived one by one. Imported responses are history:
their comments are scored for sentiment like new ones, they count as "surveyed" for the
contact throttle, and they do not notify webhooks or raise flags.

How a file is read and a cell checked is :mod:`.import_rows`; here are the four kinds of
import, what each checks of a row and writes, and the one transaction around them.
"""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
import typing as t
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from .. import checks, specs
from ..accounts.services import (
    Invitee,
    InviteError,
    find_account,
    mark_churned,
    normalise_email,
    put_contact,
    reactivate,
    set_decision_maker,
    set_owner,
    upsert_account,
    validate,
)
from ..api.openapi import Invalid
from ..db import db
from ..metrics import SCALES
from ..models import LANGUAGES, SEGMENTS, Account, Answer, Response, utcnow
from ..survey.responses import apply_sentiment, score_comment
from .events import event_from_json, record_event
from .import_rows import (
    ImportFailed,
    RowError,
    parse_choice,
    parse_datetime,
    parse_number,
    parse_text,
    read_csv,
)


@dataclass
class ImportResult:
    rows: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        return f"{self.rows} rows: " + ", ".join(
            f"{n} {what}" for what, n in sorted(self.outcomes.items())
        )


# --- The four kinds ----------------------------------------------------------------------


class Kind(abc.ABC):
    """How one kind of file is checked (no writes) and then applied (writes)."""

    required: t.Sequence[str] = ()
    optional: t.Sequence[str] = ()

    @abc.abstractmethod
    def check(self, row: dict[str, str]) -> t.Any:
        """The row's checked values, or :class:`RowError` naming the bad column."""

    def order(self, items: list[tuple[int, t.Any]]) -> list[tuple[int, t.Any]]:
        return items

    @abc.abstractmethod
    def apply(self, item: t.Any) -> str:
        """Write one checked row; the outcome ("created", "unchanged", ...)."""


def _outcome(obj: t.Any) -> str:
    if obj in db.session.new:
        return "created"
    return "updated" if db.session.is_modified(obj) else "unchanged"


class _Accounts(Kind):
    required = ("external_ref", "name", "segment")
    #: ``owner_email``: the staff member who owns it (empty: unchanged); ``churned_at``: when
    #: the customer left (empty: a live customer, reactivated if it had churned)
    optional = ("annual_value", "owner_email", "churned_at")

    def check(self, row):
        try:  # negative, or too large to store once rounded to the cent
            value = checks.money(parse_number(row, "annual_value"))
        except checks.CheckError:
            raise RowError("annual_value", "must be from 0 to 999999999999.99") from None
        owner = row.get("owner_email", "")
        if owner:
            try:
                owner = normalise_email(owner)
            except InviteError as exc:
                raise RowError("owner_email", str(exc).partition(": ")[2]) from None
        churn: dt.datetime | None | bool = False  # False: the file has no churned_at column
        if "churned_at" in row:
            churn = parse_datetime(row, "churned_at") if row["churned_at"] else None
        return (
            dict(
                external_ref=parse_text(row, "external_ref", 100),
                name=parse_text(row, "name"),
                segment=parse_choice(row, "segment", SEGMENTS),
                annual_value=value,
            ),
            owner,
            churn,
        )

    def apply(self, item):
        fields, owner, churn = item
        try:
            account = upsert_account(**fields)
        except InviteError as exc:
            raise RowError("name", str(exc).partition(": ")[2]) from None
        try:
            if owner:
                set_owner(account, owner)
            if churn is None and account.churned_at is not None:
                reactivate(account)
            elif isinstance(churn, dt.datetime) and account.churned_at != churn:
                db.session.flush()  # its first known day counts its answers
                mark_churned(account, churn)
        except InviteError as exc:
            column, _, message = str(exc).partition(": ")
            raise RowError(column, message) from None
        return _outcome(account)


class _Contacts(Kind):
    required = ("email", "name", "language")
    #: ``decision_maker``: true or false (yes/no, 1/0); empty leaves it as it is
    optional = ("account_ref", "account", "decision_maker")

    def check(self, row):
        if not row.get("account_ref") and not row.get("account"):
            raise RowError("account_ref", "give the account's external ref or its name")
        try:
            invitee = validate(
                Invitee(
                    email=row["email"],
                    name=row["name"],
                    account=row.get("account") or row["account_ref"],
                    segment="b2b",  # checked when applied: the account must exist
                    language=row["language"].lower(),
                )
            )
        except InviteError as exc:
            column, _, message = str(exc).partition(": ")
            raise RowError(column, message) from None
        decides = row.get("decision_maker", "").strip().lower()
        if decides and decides not in _YES + _NO:
            raise RowError("decision_maker", "must be true or false")
        decision_maker = None if not decides else decides in _YES
        return invitee, row.get("account_ref") or None, row.get("account") or None, decision_maker

    def apply(self, item):
        invitee, ref, name, decision_maker = item
        account = find_account(external_ref=ref) if ref else find_account(name=name)
        if account is None:
            column, value = ("account_ref", ref) if ref else ("account", name)
            raise RowError(column, f"no account {value!r}; import accounts first")
        contact = put_contact(
            account, email=invitee.email, name=invitee.name, language=invitee.language
        )
        if contact.erased_at is not None:
            return "erased, left alone"
        if decision_maker is not None and contact.is_decision_maker != decision_maker:
            set_decision_maker(contact, decision_maker)
        return _outcome(contact)


_YES, _NO = ("true", "yes", "1", "ja"), ("false", "no", "0", "nej")


#: event CSV column -> where it goes in the API's JSON
_EVENT_COLUMNS = {
    "external_id": ("external_id",),
    "kind": ("kind",),
    "occurred_at": ("occurred_at",),
    "account_ref": ("account", "external_ref"),
    "account_name": ("account", "name"),
    "segment": ("account", "segment"),
    "annual_value": ("account", "annual_value"),
    "contact_email": ("contact", "email"),
    "contact_name": ("contact", "name"),
    "language": ("contact", "language"),
    "amount": ("amount",),
    "product": ("product",),
}
_EVENT_FIELDS = {".".join(path): column for column, path in _EVENT_COLUMNS.items()}


class _Events(Kind):
    required = tuple(c for c in _EVENT_COLUMNS if c not in ("annual_value", "amount", "product"))
    optional = ("annual_value", "amount", "product")

    def check(self, row):
        data: dict[str, t.Any] = {"account": {}, "contact": {}}
        for column, path in _EVENT_COLUMNS.items():
            value: t.Any = row.get(column, "")
            if value == "":
                continue
            if column in ("annual_value", "amount"):
                value = float(parse_number(row, column))
            elif column == "occurred_at":
                value = parse_datetime(row, column).isoformat()
            elif column in ("kind", "segment", "language"):
                value = value.lower()
            target = data
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        try:
            return event_from_json(data)
        except Invalid as exc:
            raise RowError(_EVENT_FIELDS.get(exc.field or "", exc.field), exc.message) from None

    def order(self, items):
        # Oldest first, so throttling decides as if the events had come in one by one.
        return sorted(items, key=lambda item: (item[1].occurred_at, item[0]))

    def apply(self, item):
        try:
            recorded = record_event(item)
        except InviteError as exc:
            field_name, _, message = str(exc).partition(": ")
            columns = {"email": "contact_email", "name": "contact_name", "account": "account_name"}
            raise RowError(columns.get(field_name, field_name), message) from None
        if not recorded.created:
            return "events already there"
        db.session.flush()
        outcomes = [
            f"invitation {i.status}" + (f" ({i.skip_reason})" if i.skip_reason else "")
            for i in recorded.invitations
        ]
        return ";".join(["events created", *outcomes])


class _Responses(Kind):
    required = ("account", "contact_email", "submitted_at", "language")
    optional = ("nps", "csat", "ces", "comment", "account_ref", "segment", "contact_name")

    def __init__(self, survey: str, question: str) -> None:
        self.survey, self.question = survey, question
        self.max_length = int(current_app.config["COMMENT_MAX_LENGTH"])

    def check(self, row):
        try:
            email = normalise_email(row["contact_email"])
        except InviteError as exc:
            raise RowError("contact_email", str(exc).removeprefix("email: ")) from None
        scores = {}
        for metric, (low, high) in SCALES.items():
            value = parse_number(row, metric, int)
            if value is not None and not low <= value <= high:
                raise RowError(metric, f"must be a whole number from {low} to {high}")
            scores[metric] = value
        comment = row.get("comment", "")
        if checks.typed_length(comment) > self.max_length:  # as the survey counts it
            raise RowError("comment", f"at most {self.max_length} characters")
        if "\x00" in comment:
            raise RowError("comment", "contains a NUL character")
        if comment == "" and all(v is None for v in scores.values()):
            raise RowError(None, "no score and no comment")
        submitted_at = parse_datetime(row, "submitted_at")
        if submitted_at > utcnow() + dt.timedelta(days=1):
            raise RowError("submitted_at", "must not be in the future")
        segment = row.get("segment", "")
        return dict(
            account=parse_text(row, "account"),
            account_ref=parse_text(row, "account_ref", 100, required=False) or None,
            segment=parse_choice(row, "segment", SEGMENTS) if segment else None,
            email=email,
            name=parse_text(row, "contact_name", required=False) or email.partition("@")[0],
            language=parse_choice(row, "language", LANGUAGES),
            submitted_at=submitted_at,
            comment=comment or None,
            **scores,
        )

    def apply(self, item):
        key = hashlib.sha256(
            f"{self.survey}|{item['email']}|{item['submitted_at'].isoformat()}".encode()
        ).hexdigest()
        if db.session.scalar(sa.select(Response.id).where(Response.import_key == key)):
            return "unchanged"
        account = self._account(item)
        contact = put_contact(
            account,
            email=item["email"],
            name=item["name"],
            language=item["language"],
            update=False,  # history: who they are today is not the old tool's to say
        )
        response = Response(
            source="import",
            import_key=key,
            contact=contact,
            account=account,
            survey=self.survey,
            survey_version=0,  # not a version of ours: the other tool's questions
            language=item["language"],
            nps=item["nps"],
            csat=item["csat"],
            ces=item["ces"],
            complete=True,
            submitted_at=item["submitted_at"],
            updated_at=item["submitted_at"],
        )
        if item["comment"]:
            answer = Answer(question=self.question, text=item["comment"])
            apply_sentiment(answer, score_comment(item["comment"], item["language"]))
            response.answers.append(answer)
        db.session.add(response)
        db.session.flush()  # a second row with the same key now finds this one
        return "created"

    def _account(self, item) -> Account:
        ref, name = item["account_ref"], item["account"]
        account = find_account(external_ref=ref, name=name)
        if account is None:
            if item["segment"] is None:
                raise RowError("segment", f"no account {name!r}: give its segment to create it")
            account = upsert_account(
                name=name, segment=item["segment"], external_ref=ref, annual_value=None
            )
        return account


def check(kind: Kind, data: bytes) -> list[tuple[int, t.Any]]:
    """Every row checked, in the order they will be applied, with their line numbers;
    raises :class:`ImportFailed` listing every bad row. Reads, never writes."""
    rows, errors = read_csv(data, kind.required, kind.optional)
    items = []
    for line, row in rows:
        try:
            items.append((line, kind.check(row)))
        except RowError as exc:
            exc.line = line
            errors.append(exc)
    if errors:
        raise ImportFailed(sorted(errors, key=lambda e: e.line))
    return kind.order(items)


def apply(kind: Kind, items: t.Iterable[tuple[int, t.Any]], *, keep: bool = True) -> ImportResult:
    """Write checked rows in one transaction: all of them, or (raising
    :class:`ImportFailed`) none. ``keep=False``: written and rolled back, so a preview
    tells what the import would do (rows created, updated, unchanged) and the rows only
    the writing finds wrong, before anything is kept."""
    result = ImportResult()
    line = 0
    try:
        for line, item in items:  # noqa: B007 - `line` names the row in an error below
            result.rows += 1
            result.outcomes.update(kind.apply(item).split(";"))
        if keep:
            db.session.commit()
        else:
            db.session.flush()
            db.session.rollback()
    except RowError as exc:
        db.session.rollback()
        exc.line = line
        raise ImportFailed([exc]) from None
    except sa.exc.IntegrityError as exc:
        db.session.rollback()
        message = f"conflicts with data stored meanwhile ({exc.orig}); run the import again"
        raise ImportFailed([RowError(None, message, line)]) from None
    except BaseException:
        db.session.rollback()
        raise
    return result


def run(kind: Kind, data: bytes) -> ImportResult:
    """Check, then apply: the whole file or nothing."""
    return apply(kind, check(kind, data))


def make_kind(name: str, *, survey: str | None = None, question: str | None = None) -> Kind:
    if name == "responses":
        return _responses_kind(survey or "post-sale", question)
    kinds: dict[str, t.Callable[[], Kind]] = {
        "accounts": _Accounts,
        "contacts": _Contacts,
        "events": _Events,
    }
    return kinds[name]()


def _responses_kind(survey_id: str, question: str | None) -> _Responses:
    surveys = specs.surveys(current_app)
    if survey_id not in surveys:
        raise ValueError(f"--survey: unknown survey {survey_id!r}; known: {', '.join(surveys)}")
    texts = [q.id for q in surveys[survey_id].questions if q.kind == "text"]
    question = question or (texts[0] if texts else "comment")
    if texts and question not in texts:
        raise ValueError(f"--comment-question: must be one of {', '.join(texts)}")
    return _Responses(survey_id, question)
