"""The account pages: the list of live accounts (``/accounts``) and one account
(``/accounts/<id>``) with its health, history, contacts, timeline and actions.

The list pages by keyset (a cursor of the last row's sort key, whatever the sort), so the
hundredth page costs what the first does; each page reads its sort keys in one query over the
accounts table, then its fifty rows with a few plain queries. Every action is a plain form
POST (CSRF-checked app-wide) that redirects back, so the page works without JavaScript; bad
input is answered with the reason, a 422 and the typed text kept. What an action does is
:mod:`.services` (owner, decision maker, churn) and :mod:`.warnings` (acknowledge, resolve).
The charts come from :mod:`loyalty.dashboard.charts`, each with its numbers as a table too.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import typing as t
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload, selectinload

from .. import checks, periods
from ..auth import role_required
from ..dashboard import charts
from ..db import db
from ..emails import WARNING_NAMES
from ..models import (
    ACT_ROLES,
    HEALTH_BANDS,
    LANGUAGES,
    READ_ROLES,
    SEGMENTS,
    WARNING_KINDS,
    Account,
    Case,
    Contact,
    HealthSnapshot,
    HealthWarning,
    Response,
    User,
    utcnow,
)
from ..triage.cases import OUTCOME_NAMES, STATE_NAMES
from ..triage.flags import severity_name
from ..triage.settings import settings
from . import rollup, services, warnings

bp = Blueprint("accounts", __name__)
bp.register_blueprint(charts.bp)  # plotly.js, served from the installed plotly package

PAGE_SIZE = 50
#: Larger ids cannot be stored (SQLite and PostgreSQL integers), so they are simply unknown.
MAX_ID = 2**31 - 1
BAND_NAMES = {"healthy": "Healthy", "watch": "Watch", "at_risk": "At risk"}
SIGNAL_NAMES = {
    "nps": "NPS",
    "nps_trend": "NPS trend",
    "csat": "CSAT",
    "sentiment": "Comment sentiment",
    "churn_cues": "Churn cues",
    "cases": "Open cases",
    "not_recovered": "Not recovered",
    "silence": "Silence",
    "recency": "Recency",
    "contacts": "Contacts",
}
STATUS_FILTERS = {"live": "Live", "churned": "Churned", "all": "All"}
WARNING_FILTERS = {"any": "Any open warning", "none": "No open warning"} | {
    kind: WARNING_NAMES.get(kind, kind).capitalize() for kind in WARNING_KINDS
}
#: Before this no churn is believable (and far enough back, a local midnight is no moment).
EARLIEST_CHURN = dt.date(1970, 1, 1)
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
    then = {days: _scores_then(ids, now - dt.timedelta(days=days)) for days in (30, 90)}
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


def _scores_then(ids: list[int], at: dt.datetime) -> dict[int, int]:
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


# --- the account page ----------------------------------------------------------------------


def get_account_or_404(account_id: int) -> Account:
    if account_id > MAX_ID:
        abort(404)
    account = db.session.scalar(
        sa.select(Account).where(Account.id == account_id).options(joinedload(Account.owner))
    )
    if account is None:
        abort(404)
    return account


@dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    kind: str  # response, case_opened, case_resolved, warning, warning_acted
    title: str
    body: tuple[str, ...] = ()
    link: str | None = None
    tone: str = ""


@dataclass
class ContactView:
    contact: Contact
    latest: Response | None
    comments: list[str] = field(default_factory=list)


@dataclass
class AccountView:
    """Everything the account page shows besides the account itself."""

    contributions: list[dict[str, t.Any]]
    base: float
    bands: dict[str, int]
    snapshots: list[HealthSnapshot]
    warnings: list[HealthWarning]
    open_warnings: list[HealthWarning]
    reasons: dict[int, list[str]]
    contacts: list[ContactView]
    timeline: list[TimelineItem]
    contributions_chart: t.Any
    history_chart: t.Any
    staff: list[User]
    change30: int | None
    change90: int | None
    since: dt.date | None


TIMELINE_SIZE = 150


def account_view(account: Account, now: dt.datetime | None = None) -> AccountView:
    now = now or utcnow()
    conf = rollup.rules()
    tz = settings().calendar.tz
    contributions = [
        c
        for c in rollup.contributions(account.health_contributions)
        if isinstance(c, dict) and isinstance(c.get("points"), int | float)
    ]
    snapshots = list(
        db.session.scalars(
            sa.select(HealthSnapshot)
            .where(HealthSnapshot.account_id == account.id)
            .order_by(HealthSnapshot.at)
        )
    )
    warning_rows = list(
        db.session.scalars(
            sa.select(HealthWarning)
            .where(HealthWarning.account_id == account.id)
            .options(joinedload(HealthWarning.acted_by))
            .order_by(HealthWarning.raised_at.desc(), HealthWarning.id.desc())
        )
    )
    contacts = list(
        db.session.scalars(
            sa.select(Contact)
            .where(Contact.account_id == account.id)
            .order_by(Contact.is_decision_maker.desc(), Contact.name, Contact.id)
        )
    )
    responses = list(
        db.session.scalars(
            sa.select(Response)
            .where(Response.account_id == account.id)
            .options(selectinload(Response.answers), joinedload(Response.contact))
            .order_by(Response.submitted_at.desc(), Response.id.desc())
            .limit(TIMELINE_SIZE)
        ).unique()
    )
    latest = _latest_answers([c.id for c in contacts])
    cases = list(
        db.session.scalars(
            sa.select(Case)
            .where(Case.account_id == account.id)
            .options(joinedload(Case.assignee))
            .order_by(Case.opened_at.desc())
            .limit(TIMELINE_SIZE)
        )
    )
    then = {d: _scores_then([account.id], now - dt.timedelta(days=d)) for d in (30, 90)}
    changes = {
        d: (
            account.health_score - then[d][account.id]
            if account.health_score is not None and account.id in then[d]
            else None
        )
        for d in (30, 90)
    }
    first = services.first_known(account)
    return AccountView(
        contributions=contributions,
        base=conf["base"],
        bands=dict(conf["bands"]),
        snapshots=snapshots,
        warnings=warning_rows,
        open_warnings=[w for w in warning_rows if w.status != "resolved"],
        reasons={w.id: warnings.warning_reasons(w) for w in warning_rows},
        contacts=[
            ContactView(
                c,
                latest.get(c.id),
                [a.text for a in latest[c.id].answers if a.text] if c.id in latest else [],
            )
            for c in contacts
        ],
        timeline=_timeline(responses, cases, warning_rows),
        contributions_chart=contributions_chart(contributions, account, conf["base"]),
        history_chart=history_chart(account, snapshots, warning_rows, conf["bands"], tz, now),
        staff=owners(),
        change30=changes[30],
        change90=changes[90],
        since=first.astimezone(tz).date() if first else None,
    )


def _latest_answers(contact_ids: list[int]) -> dict[int, Response]:
    if not contact_ids:
        return {}
    latest = (
        sa.select(Response.contact_id, sa.func.max(Response.submitted_at).label("at"))
        .where(Response.contact_id.in_(contact_ids))
        .group_by(Response.contact_id)
        .subquery()
    )
    rows = db.session.scalars(
        sa.select(Response)
        .join(
            latest,
            sa.and_(
                Response.contact_id == latest.c.contact_id, Response.submitted_at == latest.c.at
            ),
        )
        .options(selectinload(Response.answers))
    )
    return {r.contact_id: r for r in rows}


def _scores_text(response: Response) -> str:
    parts = [
        f"{name} {value}"
        for name, value in (("NPS", response.nps), ("CSAT", response.csat), ("CES", response.ces))
        if value is not None
    ]
    return " · ".join(parts) or "no scores"


def _timeline(
    responses: list[Response], cases: list[Case], warning_rows: list[HealthWarning]
) -> list[TimelineItem]:
    """Answers, cases and warnings, newest first, on one line."""
    items = [
        TimelineItem(
            r.submitted_at,
            "response",
            f"{r.contact.name} answered: {_scores_text(r)}"
            + ("" if r.complete else " (score tapped in the email only)"),
            tuple(a.text for a in r.answers if a.text),
            tone="negative" if r.nps is not None and r.nps <= 6 else "",
        )
        for r in responses
    ]
    for case in cases:
        link = url_for("triage.case", case_id=case.id)
        assignee = case.assignee.email if case.assignee else "nobody"
        items.append(
            TimelineItem(
                case.opened_at,
                "case_opened",
                f"Case #{case.id} opened ({severity_name(case.severity)}), assigned to {assignee}",
                (f"Now: {STATE_NAMES.get(case.status, case.status)}",),
                link,
                "negative",
            )
        )
        if case.resolved_at is not None:
            outcome = OUTCOME_NAMES.get(case.outcome or "", case.outcome or "")
            items.append(
                TimelineItem(
                    case.resolved_at,
                    "case_resolved",
                    f"Case #{case.id} resolved: {outcome}",
                    (),
                    link,
                )
            )
    for w in warning_rows:
        name = WARNING_NAMES.get(w.kind, w.kind)
        items.append(
            TimelineItem(
                w.raised_at,
                "warning",
                f"Warning: {name} (health {w.score})",
                tuple(warnings.warning_reasons(w)),
                f"#warning-{w.id}",
                "negative",
            )
        )
        if w.acted_at is not None and w.status != "open":
            who = w.acted_by.email if w.acted_by else "Loyalty"
            verb = "resolved" if w.status == "resolved" else "acknowledged"
            items.append(
                TimelineItem(
                    w.acted_at,
                    "warning_acted",
                    f"Warning {verb} by {who}: {name}",
                    (w.note,) if w.note else (),
                )
            )
    items.sort(key=lambda i: i.at, reverse=True)
    return items[:TIMELINE_SIZE]


# --- the charts ----------------------------------------------------------------------------


def contributions_chart(
    contributions: list[dict[str, t.Any]], account: Account, base: float
) -> t.Any:
    bars = [
        charts.Bar(
            SIGNAL_NAMES.get(str(c.get("signal")), str(c.get("signal"))),
            float(c["points"]),
            f"{c.get('detail', '')}: {float(c['points']):+g} points",
        )
        for c in contributions
    ]
    score = "not scored yet" if account.health_score is None else f"{account.health_score}"
    return charts.figure_json(
        charts.bar_chart(
            bars,
            title=f"Why {account.name} scores {score} (base {base:g})",
            axis_title="points",
        )
    )


def history_chart(
    account: Account,
    snapshots: list[HealthSnapshot],
    warning_rows: list[HealthWarning],
    bands: t.Mapping[str, int],
    tz: dt.tzinfo,
    now: dt.datetime,
) -> t.Any:
    points = [
        charts.Point(
            s.at.astimezone(tz).date(),
            s.score,
            f"{s.at.astimezone(tz):%Y-%m-%d}: {s.score} ({BAND_NAMES.get(s.band, s.band)})",
        )
        for s in snapshots
    ]
    if account.health_score is not None and account.health_at is not None:
        at = account.health_at.astimezone(tz)
        points.append(
            charts.Point(at.date(), account.health_score, f"today: {account.health_score}")
        )
    markers = [
        charts.Point(
            w.raised_at.astimezone(tz).date(),
            w.score,
            " · ".join(
                [f"{WARNING_NAMES.get(w.kind, w.kind)} ({w.raised_at.astimezone(tz):%Y-%m-%d})"]
                + warnings.warning_reasons(w)
            ),
        )
        for w in warning_rows
    ]
    return charts.figure_json(
        charts.line_chart(
            [charts.Series(f"Health of {account.name}", points)],
            thresholds=[
                charts.Threshold(bands["healthy"], f"healthy from {bands['healthy']}", charts.GOOD),
                charts.Threshold(bands["at_risk"], f"at risk below {bands['at_risk']}", charts.BAD),
            ],
            markers=markers,
            marker_name="warnings",
            title=f"Health of {account.name}",
            axis_title="health",
            value_range=(0, 100),
        )
    )


# --- rendering and acting ------------------------------------------------------------------


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
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("accounts.account", account_id=account_id) + f"#{form_name}", code=303)


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
