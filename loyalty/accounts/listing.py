"""The account list's query: filters, sorts, keyset cursors, one page of rows, the revenue
at risk and who may own an account.

Apart from the routes (:mod:`.views`) so that other pages (the executive dashboard) can ask
for the same numbers, and so the query reads without the request: everything comes in as
arguments. The list pages by keyset (a cursor of the last row's sort key, whatever the sort),
so the hundredth page costs what the first does; each page reads its sort keys in one query
over the accounts table, then its fifty rows with a few plain queries.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import typing as t
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import sqlalchemy as sa

from .. import checks
from ..db import db
from ..emails import WARNING_NAMES
from ..models import (
    HEALTH_BANDS,
    LANGUAGES,
    SEGMENTS,
    WARNING_KINDS,
    Account,
    Case,
    Contact,
    HealthSnapshot,
    HealthWarning,
    User,
    utcnow,
)

PAGE_SIZE = 50
BAND_NAMES = {"healthy": "Healthy", "watch": "Watch", "at_risk": "At risk"}
STATUS_FILTERS = {"live": "Live", "churned": "Churned", "all": "All"}
WARNING_FILTERS = {"any": "Any open warning", "none": "No open warning"} | {
    kind: WARNING_NAMES.get(kind, kind).capitalize() for kind in WARNING_KINDS
}
#: Where rows with nothing to sort on (no score yet, no history) go: after the others.
_LAST = 1_000_000


def money(value: Decimal | int | None) -> str:
    """An annual value as the pages show it: whole units, half up, thousands separated."""
    amount = Decimal(value or 0).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"{amount:,}"


class AccountPageError(ValueError):
    """A filter, a page link or a form value the page cannot use; the message says why."""


# --- the list: filters, sorts and the keyset cursor ----------------------------------------


@dataclass(frozen=True)
class Filters:
    status: str = "live"
    band: str = ""  # a band, or "none" (not scored yet)
    segment: str = ""
    owner: str = ""  # "", "me", "none" or a user id
    language: str = ""  # a contact speaks it
    warning: str = ""  # "", "any", "none" or a kind
    q: str = ""  # part of the name or the external reference
    sort: str = ""  # "" is the default: my accounts first, then worst first
    dir: str = ""

    def args(self, **changes: str) -> dict[str, str]:
        """The filters as query arguments, leaving out the defaults."""
        values = {
            "status": self.status if self.status != "live" else "",
            "band": self.band,
            "segment": self.segment,
            "owner": self.owner,
            "language": self.language,
            "warning": self.warning,
            "q": self.q,
            "sort": self.sort,
            "dir": self.dir,
        } | changes
        return {k: v for k, v in values.items() if v}

    @property
    def narrowed(self) -> bool:
        """Whether anything but the sort narrows the live accounts."""
        return bool(self.args(sort="", dir=""))


@dataclass(frozen=True)
class Sort:
    label: str
    #: the direction a first click sorts in (worst, biggest or alphabetical first)
    default: str
    kind: str  # the cursor value's type: "int", "money" or "text"


SORTS = {
    "name": Sort("Account", "asc", "text"),
    "score": Sort("Score", "asc", "int"),
    "change30": Sort("30 days", "asc", "int"),
    "change90": Sort("90 days", "asc", "int"),
    "warnings": Sort("Open warnings", "desc", "int"),
    "cases": Sort("Open cases", "desc", "int"),
    "value": Sort("Annual value", "desc", "money"),
}


def parse_filters(args: t.Mapping[str, str]) -> Filters:
    """Read the list's filters from a query string; raise AccountPageError naming a bad one."""

    def choice(name: str, allowed: t.Iterable[str], what: str) -> str:
        value = args.get(name, "")
        if value and value not in allowed:
            raise AccountPageError(f"Unknown {what} {value!r}; choose one from the list.")
        return value

    status = choice("status", STATUS_FILTERS, "status") or "live"
    band = choice("band", [*HEALTH_BANDS, "none"], "band")
    segment = choice("segment", SEGMENTS, "segment")
    language = choice("language", LANGUAGES, "language")
    warning = choice("warning", WARNING_FILTERS, "warning filter")
    sort = choice("sort", SORTS, "sort")
    direction = choice("dir", ("asc", "desc"), "sort direction")
    owner = args.get("owner", "").strip()
    if owner not in ("", "me", "none") and not (owner.isdigit() and len(owner) < 10):
        raise AccountPageError("Unknown owner; choose one from the list.")
    q = args.get("q", "").strip()
    if len(q) > 200 or not checks.is_one_line(q):
        raise AccountPageError("The search is at most 200 characters, on one line.")
    return Filters(status, band, segment, owner, language, warning, q, sort, direction)


def _like(text: str) -> str:
    needle = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{needle}%"


def _open_warnings(kind: str | None = None) -> sa.Exists:
    query = sa.select(HealthWarning.id).where(
        HealthWarning.account_id == Account.id, HealthWarning.status != "resolved"
    )
    if kind:
        query = query.where(HealthWarning.kind == kind)
    return query.exists()


def _filtered(query: sa.Select, filters: Filters, user_id: int | None) -> sa.Select:
    if filters.status == "live":
        query = query.where(Account.churned_at.is_(None))
    elif filters.status == "churned":
        query = query.where(Account.churned_at.is_not(None))
    if filters.band == "none":
        query = query.where(Account.health_band.is_(None))
    elif filters.band:
        query = query.where(Account.health_band == filters.band)
    if filters.segment:
        query = query.where(Account.segment == filters.segment)
    if filters.owner == "me":
        query = query.where(Account.owner_id == user_id)
    elif filters.owner == "none":
        query = query.where(Account.owner_id.is_(None))
    elif filters.owner:
        query = query.where(Account.owner_id == int(filters.owner))
    if filters.language:
        query = query.where(
            sa.select(Contact.id)
            .where(Contact.account_id == Account.id, Contact.language == filters.language)
            .exists()
        )
    if filters.warning == "any":
        query = query.where(_open_warnings())
    elif filters.warning == "none":
        query = query.where(~_open_warnings())
    elif filters.warning:
        query = query.where(_open_warnings(filters.warning))
    if filters.q:
        needle = _like(filters.q)
        query = query.where(
            sa.or_(
                sa.func.lower(Account.name).like(needle, escape="\\"),
                sa.func.lower(Account.external_ref).like(needle, escape="\\"),
            )
        )
    return query


#: How far before the moment compared with a weekly snapshot may be, and still stand for it
#: (two weeks: one missed week); an older one belongs to another time (a gap as a customer).
SNAPSHOT_SLACK = dt.timedelta(days=14)


def _score_then(days: int, now: dt.datetime) -> sa.ScalarSelect:
    """The account's score in its latest weekly snapshot ``days`` ago (or a little before)."""
    at = now - dt.timedelta(days=days)
    return (
        sa.select(HealthSnapshot.score)
        .where(
            HealthSnapshot.account_id == Account.id,
            HealthSnapshot.at <= at,
            HealthSnapshot.at > at - SNAPSHOT_SLACK,
        )
        .order_by(HealthSnapshot.at.desc())
        .limit(1)
        .scalar_subquery()
    )


def _sort_key(
    filters: Filters, user_id: int | None, now: dt.datetime
) -> list[tuple[sa.ColumnElement[t.Any], bool, str]]:
    """The page's sort key: (expression, descending, cursor type) each, never NULL, with the
    account id last so that every row has its own place."""
    name = filters.sort or "score"
    sort = SORTS[name]
    descending = (filters.dir or sort.default) == "desc"
    missing = -_LAST if descending else _LAST
    expression: sa.ColumnElement[t.Any]
    if name == "name":
        expression = sa.func.lower(Account.name)
    elif name == "score":
        expression = sa.func.coalesce(Account.health_score, missing)
    elif name in ("change30", "change90"):
        then = _score_then(30 if name == "change30" else 90, now)
        expression = sa.func.coalesce(Account.health_score - then, missing)
    elif name == "warnings":
        expression = (
            sa.select(sa.func.count(HealthWarning.id))
            .where(HealthWarning.account_id == Account.id, HealthWarning.status != "resolved")
            .scalar_subquery()
        )
    elif name == "cases":
        expression = (
            sa.select(sa.func.count(Case.id))
            .where(Case.account_id == Account.id, Case.status != "resolved")
            .scalar_subquery()
        )
    else:
        expression = Account.annual_value.expression
    key = [(expression, descending, sort.kind)]
    if not filters.sort and user_id is not None:  # the owner sees their accounts first
        mine = sa.case((Account.owner_id == user_id, 0), else_=1)
        key.insert(0, (mine, False, "int"))
    return [*key, (Account.id.expression, False, "int")]


def encode_cursor(values: t.Sequence[t.Any]) -> str:
    plain = [str(v) if isinstance(v, Decimal) else v for v in values]
    raw = json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str, kinds: t.Sequence[str]) -> list[t.Any]:
    """The sort key values a page link carries, checked against the sort's types."""
    bad = AccountPageError("That page link is not valid; start again from the first page.")
    if len(value) > 1200:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise bad
    out: list[t.Any] = []
    for kind, item in zip(kinds, values, strict=True):
        if kind == "int":
            if type(item) is not int or not -(2**62) < item < 2**62:
                raise bad
            out.append(item)
        elif kind == "money":
            try:
                amount = Decimal(item) if isinstance(item, str) and len(item) < 30 else None
            except InvalidOperation:
                amount = None
            if amount is None or not amount.is_finite() or abs(amount) > checks.MAX_MONEY:
                raise bad
            out.append(amount)
        else:
            if not isinstance(item, str) or len(item) > 400 or not checks.is_one_line(item):
                raise bad
            out.append(item)
    return out


def _after(key: list[tuple[sa.ColumnElement[t.Any], bool, str]], values: list[t.Any]):
    """Rows after the cursor in the key's order: (a > x) or (a = x and (b > y or ...))."""
    expression, descending, _ = key[-1]
    condition = expression < values[-1] if descending else expression > values[-1]
    for (expression, descending, _), value in zip(key[-2::-1], values[-2::-1], strict=True):
        beyond = expression < value if descending else expression > value
        condition = sa.or_(beyond, sa.and_(expression == value, condition))
    return condition


# --- the list: one page --------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    """What the list shows of one account, read as plain rows."""

    id: int
    name: str
    segment: str
    score: int | None
    band: str | None
    stale: bool
    annual_value: Decimal
    owner: str | None
    churned_at: dt.datetime | None
    change30: int | None = None
    change90: int | None = None
    warnings: tuple[str, ...] = ()
    cases: int = 0


@dataclass
class AccountPage:
    rows: list[AccountRow]
    total: int
    next_cursor: str | None


@dataclass(frozen=True)
class AtRisk:
    """The annual value of the live accounts at risk, and of all live accounts."""

    value: Decimal
    accounts: int
    live_value: Decimal
    live_accounts: int

    @property
    def share(self) -> float | None:
        return float(self.value / self.live_value) if self.live_value else None


def account_page(
    filters: Filters,
    *,
    user_id: int | None = None,
    after: str | None = None,
    now: dt.datetime | None = None,
    limit: int = PAGE_SIZE,
) -> AccountPage:
    """One page of accounts in the filters' order."""
    now = now or utcnow()
    key = _sort_key(filters, user_id, now)
    total = db.session.scalar(_filtered(sa.select(sa.func.count(Account.id)), filters, user_id))
    keys = _filtered(
        sa.select(*(e.label(f"k{i}") for i, (e, _, _) in enumerate(key))), filters, user_id
    )
    if after is not None:
        keys = keys.where(_after(key, decode_cursor(after, [k for _, _, k in key])))
    keys = keys.order_by(*(e.desc() if d else e.asc() for e, d, _ in key))
    found = db.session.execute(keys.limit(limit + 1)).all()
    page_keys = found[:limit]
    ids = [row[-1] for row in page_keys]
    next_cursor = encode_cursor(list(page_keys[-1])) if len(found) > limit else None
    return AccountPage(_rows(ids, now), total or 0, next_cursor)


def _rows(ids: list[int], now: dt.datetime) -> list[AccountRow]:
    """The page's accounts with their owners; their warnings, cases and earlier scores."""
    if not ids:
        return []
    accounts = db.session.execute(
        sa.select(
            Account.id,
            Account.name,
            Account.segment,
            Account.health_score,
            Account.health_band,
            Account.health_stale,
            Account.annual_value,
            User.email,
            Account.churned_at,
        )
        .outerjoin(User, Account.owner_id == User.id)
        .where(Account.id.in_(ids))
    ).all()
    kinds: dict[int, list[str]] = {}
    for account_id, kind in db.session.execute(
        sa.select(HealthWarning.account_id, HealthWarning.kind)
        .where(HealthWarning.account_id.in_(ids), HealthWarning.status != "resolved")
        .order_by(HealthWarning.account_id, HealthWarning.raised_at)
    ):
        kinds.setdefault(account_id, []).append(kind)
    cases = dict(
        db.session.execute(
            sa.select(Case.account_id, sa.func.count(Case.id))
            .where(Case.account_id.in_(ids), Case.status != "resolved")
            .group_by(Case.account_id)
        ).all()
    )
    then = {days: scores_then(ids, now - dt.timedelta(days=days)) for days in (30, 90)}
    by_id = {}
    for row in accounts:
        score = row.health_score

        def change(days: int, account_id: int = row.id, score: int | None = score) -> int | None:
            before = then[days].get(account_id)
            return None if score is None or before is None else score - before

        by_id[row.id] = AccountRow(
            id=row.id,
            name=row.name,
            segment=row.segment,
            score=score,
            band=row.health_band,
            stale=row.health_stale,
            annual_value=row.annual_value or Decimal(0),
            owner=row.email,
            churned_at=row.churned_at,
            change30=change(30),
            change90=change(90),
            warnings=tuple(kinds.get(row.id, ())),
            cases=cases.get(row.id, 0),
        )
    return [by_id[i] for i in ids if i in by_id]


def scores_then(ids: list[int], at: dt.datetime) -> dict[int, int]:
    """Each account's score in its latest snapshot at ``at`` (or a little before)."""
    latest = (
        sa.select(HealthSnapshot.account_id, sa.func.max(HealthSnapshot.at).label("at"))
        .where(
            HealthSnapshot.account_id.in_(ids),
            HealthSnapshot.at <= at,
            HealthSnapshot.at > at - SNAPSHOT_SLACK,
        )
        .group_by(HealthSnapshot.account_id)
        .subquery()
    )
    return dict(
        db.session.execute(
            sa.select(HealthSnapshot.account_id, HealthSnapshot.score).join(
                latest,
                sa.and_(
                    HealthSnapshot.account_id == latest.c.account_id,
                    HealthSnapshot.at == latest.c.at,
                ),
            )
        ).all()
    )


def revenue_at_risk(filters: Filters | None = None, user_id: int | None = None) -> AtRisk:
    """The annual value at risk among the live accounts (of those the filters keep, if any)."""
    query = sa.select(
        sa.func.coalesce(
            sa.func.sum(sa.case((Account.health_band == "at_risk", Account.annual_value))), 0
        ),
        sa.func.count(sa.case((Account.health_band == "at_risk", Account.id))),
        sa.func.coalesce(sa.func.sum(Account.annual_value), 0),
        sa.func.count(Account.id),
    ).where(Account.churned_at.is_(None))
    if filters is not None:
        query = _filtered(query, filters, user_id)
    value, accounts, live_value, live = db.session.execute(query).one()
    return AtRisk(Decimal(str(value)), accounts, Decimal(str(live_value)), live)


def owners() -> list[User]:
    """Everyone who may own an account: the active staff."""
    return list(
        db.session.scalars(sa.select(User).where(User.active.is_(True)).order_by(User.email))
    )
