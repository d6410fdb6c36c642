"""The account pages: the list (revenue at risk, filters, sorting, keyset paging, my accounts
first), the account page (contributions, history with the bands and warnings, contacts,
timeline), every action as a CSRF-checked POST with good and bad input, escaping in the page
and in the chart JSON, and every route walked with every role."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import json
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import csrf_from

from loyalty import periods, storage
from loyalty.accounts import health, rollup
from loyalty.accounts import views as accounts
from loyalty.auth import create_user
from loyalty.db import db
from loyalty.models import (
    Account,
    Answer,
    Case,
    Contact,
    HealthSnapshot,
    HealthWarning,
    Response,
    User,
    utcnow,
)
from loyalty.triage.settings import settings

DAY = dt.timedelta(days=1)
EVIL = "<b>Evil</b> A/S"
EVIL_HTML = "&lt;b&gt;Evil&lt;/b&gt; A/S"

# --- helpers ---------------------------------------------------------------------------------

_seq = iter(range(1, 1_000_000))


def staff(email: str = "owner@example.com", role: str = "support") -> User:
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        user = create_user(email, role, "correct horse battery")
        db.session.commit()
    return user


def account(
    name: str | None = None,
    *,
    score: int | None = 50,
    segment: str = "b2b",
    value: int | str = 0,
    owner: User | None = None,
    churned: bool = False,
    language: str = "en",
) -> Account:
    """An account with today's health set directly (no scoring), and one contact."""
    n = next(_seq)
    band = None if score is None else health.band_for(score, health.DEFAULT_RULES)
    acc = Account(
        name=name or f"Account {n:05d}", segment=segment, annual_value=Decimal(value),
        owner=owner, health_score=score, health_band=band, health_stale=False,
        health_at=None if score is None else utcnow(),
        churned_at=utcnow() - 10 * DAY if churned else None,
        created_at=utcnow() - 400 * DAY,
    )  # fmt: skip
    db.session.add(acc)
    db.session.add(
        Contact(account=acc, email=f"c{n}@example.com", name=f"Contact {n}", language=language)
    )
    db.session.commit()
    return acc


def answer(
    acc: Account,
    contact: Contact,
    *,
    days_ago: float,
    nps: int | None = None,
    csat: int | None = None,
    text: str | None = None,
    polarity: float | None = None,
    cues: str | None = None,
) -> Response:
    at = utcnow() - days_ago * DAY
    response = Response(
        contact=contact, account=acc, survey="post-sale", survey_version=1,
        language=contact.language, nps=nps, csat=csat, submitted_at=at, updated_at=at,
    )  # fmt: skip
    if text is not None:
        sentiment = "negative" if (polarity or 0) < -0.05 else "positive"
        response.answers.append(
            Answer(question="reason", text=text, polarity=polarity, sentiment=sentiment, cues=cues)
        )
    db.session.add(response)
    db.session.commit()
    return response


def troubled(name: str = "Acme A/S", *, owner: User | None = None) -> Account:
    """A B2B customer going bad for real: detractors, low CSAT, a decision maker writing of
    cancelling; its history rebuilt week by week and today's health computed, which puts it
    at risk and raises its warnings. A happy colleague answered too, and a case was opened."""
    acc = account(name, score=None, value=250_000, owner=owner)
    boss = Contact(
        account=acc, email=f"boss{acc.id}@example.com", name="Birgit <i>Boss</i>",
        language="da", is_decision_maker=True,
    )  # fmt: skip
    db.session.add(boss)
    happy = acc.contacts[0]
    answer(acc, happy, days_ago=150, nps=9, csat=5, text="Fine so far", polarity=0.4)
    for days in (80, 40, 12, 2):
        answer(
            acc, boss, days_ago=days, nps=1, csat=1, polarity=-0.7, cues="cancel",
            text="Vi vil opsige aftalen <script>alert(1)</script>",
        )  # fmt: skip
    opened = utcnow() - 40 * DAY
    db.session.add(
        Case(
            account=acc, severity=3, status="resolved", outcome="not_recovered",
            opened_at=opened, updated_at=opened, first_contact_due_at=opened + DAY,
            resolved_at=opened + 5 * DAY,
        )
    )  # fmt: skip
    db.session.commit()
    tz = settings().calendar.tz
    today = periods.today(tz)
    rollup.rebuild(rollup.week_ends(today - 200 * DAY, today - DAY, tz))
    rollup.refresh([acc.id])
    db.session.commit()
    assert acc.health_band == "at_risk", acc.health_contributions
    return acc


def warning(acc: Account, kind: str = "at_risk", *, status: str = "open") -> HealthWarning:
    w = HealthWarning(
        account_id=acc.id, kind=kind, reasons=json.dumps(["health 30, at risk"]), score=30,
        raised_at=utcnow() - DAY, status=status,
    )  # fmt: skip
    db.session.add(w)
    db.session.commit()
    return w


def page(client, query: str = "") -> str:
    reply = client.get(f"/accounts{query}")
    assert reply.status_code == 200, reply.get_data(as_text=True)[:2000]
    return reply.get_data(as_text=True)


def listed(client, query: str = "") -> list[int]:
    return [int(n) for n in re.findall(r'data-account="(\d+)"', page(client, query))]


def cells(client, query: str = "") -> dict[int, list[str]]:
    """Each listed account's cells as text."""
    out = {}
    for account_id, row in re.findall(
        r'data-account="(\d+)">(.*?)</tr>', page(client, query), re.S
    ):
        texts = [
            " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", c)).split())
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        out[int(account_id)] = texts
    return out


def post(client, path: str, **data: str):
    token = csrf_from(client.get("/accounts").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def figures(html: str) -> dict[str, dict]:
    """The chart figures of a page, by the id of the element each is drawn in."""
    found = re.findall(
        r'<script type="application/json" data-chart="([^"]+)">(.*?)</script>', html, re.S
    )
    for _, text in found:
        assert "<" not in text and ">" not in text and "&" not in text
    return {target: json.loads(text) for target, text in found}


def fresh(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


# --- the list ----------------------------------------------------------------------------------


def test_list_is_worst_first_with_revenue_at_risk_on_top(client, auth):
    auth.login("executive")
    healthy = account(score=80, value=100_000)
    risky = account(score=30, value="250000.50")
    watch = account(score=50, value=50_000)
    unscored = account(score=None, value=10_000)
    account(score=10, value=999_999, churned=True)  # left: not in the live views
    assert listed(client) == [risky.id, watch.id, healthy.id, unscored.id]
    html = page(client)
    assert html.index('id="revenue-at-risk"') < html.index('class="filters"')
    at_risk = re.search(r'id="revenue-at-risk">(.*?)</section>', html, re.S).group(1)
    text = " ".join(re.sub(r"<[^>]+>", " ", at_risk).split())
    assert "250,001 annual value in 1 at-risk account" in text
    assert "61% of the 410,001 of all 4 live accounts" in text
    assert "Accounts 1–4 of 4" in html
    row = cells(client)[risky.id]
    assert row[1].startswith("30 At risk") and row[6] == "250,001" and row[7] == "Nobody"


def test_revenue_at_risk_of_a_filtered_view(client, auth):
    auth.login("support")
    account(score=30, value=100, segment="b2b")
    account(score=20, value=1000, segment="b2c")
    html = page(client, "?segment=b2c")
    assert "1,100</strong> annual value" in html  # the whole book first
    assert 'id="at-risk-here">Of the accounts these filters keep: 1,000 in 1 at-risk' in html
    assert 'id="at-risk-here"' not in page(client, "?sort=value")  # a sort narrows nothing


def test_no_accounts(client, auth):
    auth.login("support")
    html = page(client)
    assert "No accounts match." in html and "<strong>0</strong> annual value" in html


def test_the_owner_sees_my_accounts_first(client, auth):
    auth.login("support", email="owner@example.com")
    me = staff("owner@example.com")
    other = staff("other@example.com")
    bad = account(score=10)
    mine_fine = account(score=90, owner=me)
    mine_bad = account(score=35, owner=me)
    theirs = account(score=20, owner=other)
    assert listed(client) == [mine_bad.id, mine_fine.id, bad.id, theirs.id]
    html = page(client)
    assert "your 2 accounts first, then worst score first" in html
    assert html.count('class="band-row-') == 4 and html.count(' mine"') == 2
    # An explicit sort is that sort alone.
    assert listed(client, "?sort=score") == [bad.id, theirs.id, mine_bad.id, mine_fine.id]
    # Someone who owns nothing sees the worst first.
    client.post("/logout")
    auth.login("support", email="other@example.com")
    assert listed(client) == [theirs.id, bad.id, mine_bad.id, mine_fine.id]


def test_list_filters(client, auth):
    auth.login("support", email="me@example.com")
    me = staff("me@example.com")
    da = account("Hansen & SØN", score=30, segment="b2c", language="da", owner=me)
    pct = account("100% Organic", score=70, value=5)
    unscored = account("Nobody Yet_Ltd", score=None)
    gone = account("Gone ApS", score=20, churned=True)
    pct.external_ref = "CRM-77"
    db.session.commit()
    warning(da, "churn_cue")
    warning(pct, "silent", status="acknowledged")
    warning(unscored, "falling", status="resolved")
    assert listed(client, "?band=at_risk") == [da.id]
    assert listed(client, "?band=healthy") == [pct.id]
    assert listed(client, "?band=none") == [unscored.id]
    assert listed(client, "?segment=b2c") == [da.id]
    assert listed(client, "?owner=me") == [da.id]
    assert listed(client, f"?owner={me.id}") == [da.id]
    assert listed(client, "?owner=none&sort=name") == [pct.id, unscored.id]
    assert listed(client, "?language=da") == [da.id]
    assert listed(client, "?warning=any&sort=name") == [pct.id, da.id]  # acknowledged is open
    assert listed(client, "?warning=churn_cue") == [da.id]
    assert listed(client, "?warning=falling") == []  # resolved
    assert listed(client, "?warning=none") == [unscored.id]
    assert listed(client, "?q=hansen") == [da.id]
    assert listed(client, "?q=s%C3%B8n") == [da.id]  # Danish letters
    assert listed(client, "?q=100%25") == [pct.id]  # % is a character, not a wildcard
    assert listed(client, "?q=_") == [unscored.id]
    assert listed(client, "?q=crm-7") == [pct.id]  # the external reference
    assert listed(client, "?status=churned") == [gone.id]
    assert sorted(listed(client, "?status=all")) == sorted([da.id, pct.id, unscored.id, gone.id])
    assert listed(client, "?status=churned&band=at_risk&q=gone") == [gone.id]
    assert "churned" in cells(client, "?status=churned")[gone.id][0]
    html = page(client, "?band=at_risk&language=da")
    assert '<option value="at_risk" selected>' in html and '<option value="da" selected>' in html
    assert cells(client, "?q=hansen")[da.id][4] == "someone wrote of leaving"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?status=gone", "Unknown status"),
        ("?band=red", "Unknown band"),
        ("?segment=b2x", "Unknown segment"),
        ("?language=sv", "Unknown language"),
        ("?warning=fire", "Unknown warning filter"),
        ("?sort=colour", "Unknown sort"),
        ("?dir=up", "Unknown sort direction"),
        ("?owner=somebody", "Unknown owner"),
        ("?q=" + "x" * 201, "at most 200"),
        ("?q=a%00b", "on one line"),
        ("?after=garbage!", "page link is not valid"),
        ("?after=WzEsMl0", "page link is not valid"),  # [1,2]: the key has three parts
        ("?after=WyJ4IiwxMF0", "page link is not valid"),  # ["x",10]: not a score
        ("?sort=value&after=WyJhYmMiLDFd", "page link is not valid"),  # not an amount
        ("?sort=value&after=WyJOYU4iLDFd", "page link is not valid"),  # NaN
        ("?sort=name&after=WzEsMV0", "page link is not valid"),  # a number for a name
        ("?sort=name&after=WyJhXHUwMDAwYiIsMV0", "page link is not valid"),  # a NUL in it
        ("?sort=value&after=WyIxZTk5OTkiLDFd", "page link is not valid"),  # too large
        ("?after=" + "A" * 1300, "page link is not valid"),
    ],
)
def test_bad_filters_and_links_get_a_clear_400(client, auth, query, message):
    auth.login("support")
    account()
    reply = client.get(f"/accounts{query}")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 400 and message in html
    assert 'data-account="' in html  # the default list is still shown


def test_changes_over_30_and_90_days_come_from_the_snapshots(client, auth):
    auth.login("support")
    falling = account(score=50)
    rising = account(score=80)
    new = account(score=60)
    now = utcnow()
    for acc, points in ((falling, [(100, 70), (35, 60), (10, 55)]), (rising, [(95, 40)])):
        for days, score in points:
            db.session.add(
                HealthSnapshot(
                    account_id=acc.id, at=now - days * DAY, score=score,
                    band=health.band_for(score, health.DEFAULT_RULES), contributions="[]",
                )
            )  # fmt: skip
    db.session.commit()
    rows = cells(client)
    assert rows[falling.id][2:4] == ["-10", "-20"]  # from 60 (35 days ago) and 70 (100)
    assert rows[rising.id][2:4] == ["–", "+40"]  # nothing 30 days back but 95 days back
    assert rows[new.id][2:4] == ["–", "–"]
    assert listed(client, "?sort=change30") == [falling.id, rising.id, new.id]
    assert listed(client, "?sort=change90") == [falling.id, rising.id, new.id]
    assert listed(client, "?sort=change90&dir=desc") == [rising.id, falling.id, new.id]


def _expected(rows: list[Account], sort: str, direction: str) -> list[int]:
    counts = {
        "warnings": {
            a.id: db.session.scalar(
                sa.select(sa.func.count(HealthWarning.id)).where(
                    HealthWarning.account_id == a.id, HealthWarning.status != "resolved"
                )
            )
            for a in rows
        },
        "cases": {
            a.id: db.session.scalar(
                sa.select(sa.func.count(Case.id)).where(
                    Case.account_id == a.id, Case.status != "resolved"
                )
            )
            for a in rows
        },
    }
    sign = -1 if direction == "desc" else 1

    def key(a: Account):
        if sort == "name":
            return (a.name.lower(), a.id)  # names here are unique when lowered
        if sort == "score":
            missing = a.health_score is None
            return (missing, sign * (a.health_score or 0), a.id)
        if sort == "value":
            return (sign * a.annual_value, a.id)
        return (sign * counts[sort][a.id], a.id)

    ordered = sorted(rows, key=key)
    if sort == "name" and direction == "desc":
        ordered = sorted(rows, key=lambda a: a.id)
        ordered = sorted(ordered, key=lambda a: a.name.lower(), reverse=True)
    return [a.id for a in ordered]


def _walk(client, query: str) -> tuple[list[int], int, str]:
    seen, next_query, pages = [], query, 0
    while True:
        html = page(client, next_query)
        seen += [int(n) for n in re.findall(r'data-account="(\d+)"', html)]
        pages += 1
        match = re.search(r'href="/accounts\?([^"]+)" rel="next"', html)
        if not match:
            return seen, pages, html
        next_query = "?" + htmllib.unescape(match.group(1))


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("sort", ["name", "score", "value", "warnings", "cases"])
def test_sorting_and_keyset_paging_walk_every_account_once_in_order(
    client, auth, monkeypatch, sort, direction
):
    auth.login("support")
    scores = [30, 30, None, 70, 50, 30, None, 90, 10, 50, 65]
    rows = [
        account(f"{'abcde'[i % 5]}-{i:02d} Ltd", score=s, value=[0, 1500, 99, 1500][i % 4])
        for i, s in enumerate(scores)
    ]
    for i, acc in enumerate(rows):
        for kind in ("at_risk", "falling", "silent")[: i % 3]:
            warning(acc, kind)
        if i % 4 == 1:
            opened = utcnow()
            db.session.add(
                Case(account=acc, severity=1, opened_at=opened, first_contact_due_at=opened)
            )
    db.session.commit()
    expected = _expected(rows, sort, direction)
    monkeypatch.setattr(accounts, "PAGE_SIZE", 3)
    seen, pages, last = _walk(client, f"?sort={sort}&dir={direction}")
    assert pages == 4 and seen == expected
    assert "Accounts 10–11 of 11" in last and "First page" in last
    assert f"sort={sort}" in re.search(r'href="(/accounts\?[^"]*)">First page', last).group(1)
    monkeypatch.setattr(accounts, "PAGE_SIZE", 50)
    assert listed(client, f"?sort={sort}&dir={direction}") == expected


def test_default_order_pages_with_my_accounts_first(client, auth, monkeypatch):
    auth.login("support", email="owner@example.com")
    me = staff("owner@example.com")
    rows = [account(score=s, owner=me if i % 3 == 0 else None) for i, s in enumerate(range(9))]
    monkeypatch.setattr(accounts, "PAGE_SIZE", 2)
    seen, pages, _ = _walk(client, "")
    mine = [a.id for a in rows if a.owner_id == me.id]
    assert pages == 5 and seen == mine + [a.id for a in rows if a.id not in mine]


def test_filters_survive_paging(client, auth, monkeypatch):
    auth.login("support")
    for _ in range(3):
        account(language="da", score=30)
    account(language="en", score=30)
    monkeypatch.setattr(accounts, "PAGE_SIZE", 2)
    seen, pages, _ = _walk(client, "?language=da&band=at_risk")
    assert len(seen) == 3 and pages == 2


def count_queries(action) -> int:
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    storage.checked_now()  # the staff banner's check of the database: not in the count
    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    return len(statements)


def _busy_account(owner: User | None) -> None:
    acc = account(score=40, owner=owner)
    warning(acc)
    db.session.add(HealthSnapshot(account_id=acc.id, at=utcnow() - 40 * DAY, score=60,
                                  band="watch", contributions="[]"))  # fmt: skip
    opened = utcnow()
    db.session.add(Case(account=acc, severity=1, opened_at=opened, first_contact_due_at=opened))
    db.session.commit()


def test_a_list_page_costs_the_same_queries_for_3_or_30_accounts(client, auth):
    auth.login("support")
    lead = staff()
    for _ in range(3):
        _busy_account(lead)
    few = count_queries(lambda: client.get("/accounts?sort=change30"))
    for i in range(27):
        _busy_account(lead if i % 2 else None)
    many = count_queries(lambda: client.get("/accounts?sort=change30"))
    assert many == few <= 12


# --- the account page ------------------------------------------------------------------------


def test_account_page_shows_score_contributions_history_contacts_and_timeline(client, auth):
    auth.login("executive")
    acc = troubled()
    reply = client.get(f"/accounts/{acc.id}")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 200
    assert f">{acc.health_score}</span>" in html and '<span class="band band-at_risk">' in html
    # The contributions: a chart and the same numbers as a table.
    charts = figures(html)
    assert set(charts) == {"contributions-chart", "history-chart"}
    bars = charts["contributions-chart"]["data"][0]
    stored = rollup.contributions(acc.health_contributions)
    assert list(bars["x"]) == [c["points"] for c in stored]
    labels = charts["contributions-chart"]["layout"]["yaxis"]["ticktext"]
    assert "Churn cues" in labels and "NPS" in labels
    assert all(x < 0 for x in bars["x"])
    for c in stored:
        assert f"<td>{htmllib.escape(c['detail'])}</td>" in html
    assert "Why the score is what it is" in html and "<summary>The numbers</summary>" in html
    # The history: weekly snapshots, today, the band lines and the warnings marked.
    line, marks = charts["history-chart"]["data"]
    snapshots = db.session.scalars(
        sa.select(HealthSnapshot).where(HealthSnapshot.account_id == acc.id)
    ).all()
    assert len(line["x"]) == len(snapshots) + 1 and line["y"][-1] == acc.health_score
    layout = charts["history-chart"]["layout"]
    assert [s["y0"] for s in layout["shapes"]] == [65, 40]
    assert [a["text"] for a in layout["annotations"]] == ["healthy from 65", "at risk below 40"]
    kinds = db.session.scalars(
        sa.select(HealthWarning.kind).where(HealthWarning.account_id == acc.id)
    ).all()
    assert "at_risk" in kinds and len(marks["x"]) == len(kinds)
    assert any(h.startswith("health at risk") for h in marks["hovertext"])
    # Contacts with their latest answers, the decision maker marked (and listed first).
    contacts = re.search(r'id="contacts">(.*?)</section>', html, re.S).group(1)
    assert contacts.index("Birgit &lt;i&gt;Boss&lt;/i&gt;") < contacts.index("Contact ")
    assert '<span class="tag dm-tag">decision maker</span>' in contacts
    assert contacts.count("Latest answer") == 2 and "Fine so far" in contacts
    # One timeline: answers, the case (opened and resolved) and the warnings, newest first.
    timeline = re.search(r'id="timeline">(.*?)</section>', html, re.S).group(1)
    assert timeline.count("event-response") == 5
    assert "Case #" in timeline and "resolved: Not recovered" in timeline
    assert 'href="/triage/' in timeline and "Warning: health at risk" in timeline
    times = re.findall(r'<time datetime="([^"]+)"', timeline)
    assert times == sorted(times, reverse=True)
    # plotly.js comes from the app, never from a CDN.
    assert f'<script src="/charts/plotly-{accounts.charts.PLOTLY_JS_VERSION}.min.js" defer>' in html
    assert "cdn" not in html.lower() and "https://" not in html
    # An executive reads; the actions are not offered.
    assert "Work the account" not in html and "Acknowledge" not in html


def test_the_band_lines_follow_the_health_setting(app, client, auth):
    auth.login("support")
    acc = troubled()
    app.config["HEALTH"] = {"bands": {"healthy": 70, "at_risk": 30}}
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    layout = figures(html)["history-chart"]["layout"]
    assert [s["y0"] for s in layout["shapes"]] == [70, 30]
    assert "healthy from 70, at risk below 30" in html


def test_a_new_account_without_history_has_a_page(client, auth):
    auth.login("support")
    acc = account(score=None)
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert "it has not been computed yet" in html and "No weekly history yet." in html
    assert list(figures(html)["contributions-chart"]["data"][0]["x"]) == []


def test_unreadable_contributions_are_left_out(client, auth):
    auth.login("support")
    acc = account(score=40)
    acc.health_contributions = json.dumps([{"signal": "nps", "points": "lots"}, 3])
    db.session.commit()
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert list(figures(html)["contributions-chart"]["data"][0]["x"]) == []


def test_account_and_customer_text_is_escaped_in_the_page_and_the_charts(client, auth):
    auth.login("admin")
    acc = troubled(EVIL)
    for path in (f"/accounts/{acc.id}", "/accounts"):
        html = client.get(path).get_data(as_text=True)
        assert "<b>" not in html and "<i>" not in html and "<script>alert" not in html
        assert EVIL_HTML in html
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    charts = figures(html)  # no <, > or & anywhere in the JSON (checked there)
    bars = charts["contributions-chart"]["layout"]["title"]["text"]
    assert bars.startswith(f"Why {htmllib.escape(EVIL)} scores ")
    history = charts["history-chart"]
    assert history["layout"]["title"]["text"] == f"Health of {htmllib.escape(EVIL)}"
    assert history["data"][0]["name"] == f"Health of {htmllib.escape(EVIL)}"
    raw = re.search(r'data-chart="history-chart">(.*?)</script>', html, re.S).group(1)
    assert "\\u0026lt;b\\u0026gt;Evil" in raw


def test_unknown_accounts_are_404(client, auth):
    auth.login("support")
    assert client.get("/accounts/999").status_code == 404
    assert client.get("/accounts/99999999999999999999999").status_code == 404
    assert client.get("/accounts/-1").status_code == 404
    assert post(client, "/accounts/999/owner", owner_email="").status_code == 404
    assert post(client, "/accounts/999/churn", churned_on="2026-01-01").status_code == 404
    assert post(client, "/accounts/99999999999/reactivate").status_code == 404


# --- actions ---------------------------------------------------------------------------------


def test_set_the_owner(client, auth):
    auth.login("support")
    acc = account()
    lead = staff("lead@example.com", role="executive")
    reply = post(client, f"/accounts/{acc.id}/owner", owner_email="LEAD@example.com")
    assert reply.status_code == 303
    assert reply.headers["Location"] == f"/accounts/{acc.id}#owner"
    assert fresh(acc).owner_id == lead.id
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert "Owner: lead@example.com." in html
    assert '<option value="lead@example.com" selected>' in html
    assert post(client, f"/accounts/{acc.id}/owner", owner_email="").status_code == 303
    assert fresh(acc).owner_id is None


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("nobody@example.com", "No active staff member"),
        ("not an address", "An email address must have an @-sign."),
        ("x" * 300 + "@example.com", "Choose the owner from the list"),
        ("gone@example.com", "No active staff member"),
    ],
)
def test_a_bad_owner_is_refused_with_422(client, auth, email, message):
    auth.login("support")
    gone = staff("gone@example.com")
    gone.active = False
    db.session.commit()
    acc = account()
    reply = post(client, f"/accounts/{acc.id}/owner", owner_email=email)
    html = reply.get_data(as_text=True)
    assert reply.status_code == 422 and message in html
    assert 'aria-describedby="owner-error"' in html
    assert fresh(acc).owner_id is None


def test_mark_a_contact_as_decision_maker(client, auth):
    auth.login("admin")
    acc = account()
    contact = acc.contacts[0]
    path = f"/accounts/{acc.id}/contacts/{contact.id}/decision-maker"
    reply = post(client, path, decision_maker="1")
    assert reply.status_code == 303
    assert reply.headers["Location"] == f"/accounts/{acc.id}#contact-{contact.id}"
    assert fresh(contact).is_decision_maker and fresh(acc).health_stale
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert f"{contact.name} is a decision maker." in html and "Not a decision maker" in html
    assert "recomputed on the next dispatcher pass" in html
    assert post(client, path, decision_maker="0").status_code == 303
    assert not fresh(contact).is_decision_maker
    reply = post(client, path, decision_maker="maybe")
    assert reply.status_code == 422 and "Choose whether" in reply.get_data(as_text=True)
    other = account()
    wrong = f"/accounts/{other.id}/contacts/{contact.id}/decision-maker"
    assert post(client, wrong, decision_maker="1").status_code == 404
    unknown = f"/accounts/{acc.id}/contacts/99999999999/decision-maker"
    assert post(client, unknown, decision_maker="1").status_code == 404


def test_acknowledge_then_resolve_a_warning_with_a_note(client, auth):
    auth.login("support")
    lead = staff("support@example.com")
    acc = troubled(owner=lead)
    w = db.session.scalars(
        sa.select(HealthWarning).where(
            HealthWarning.account_id == acc.id, HealthWarning.kind == "at_risk",
            HealthWarning.status == "open",
        )
    ).one()  # fmt: skip
    path = f"/accounts/{acc.id}/warnings/{w.id}"
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert f'id="warning-{w.id}"' in html and "Acknowledge</button>" in html
    reply = post(client, path, status="acknowledged", note="Calling Birgit <tomorrow>.")
    assert reply.status_code == 303
    assert reply.headers["Location"] == f"/accounts/{acc.id}#warning-{w.id}"
    w = fresh(w)
    assert (w.status, w.note, w.acted_by_id) == (
        "acknowledged",
        "Calling Birgit <tomorrow>.",
        lead.id,
    )
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert "Warning acknowledged: health at risk." in html
    assert "Calling Birgit &lt;tomorrow&gt;." in html
    assert "Warning acknowledged by support@example.com" in html  # on the timeline
    assert post(client, path, status="resolved", note="Renewed for a year").status_code == 303
    assert fresh(w).status == "resolved"
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert f'id="warning-{w.id}"' not in html  # no longer open
    reply = post(client, path, status="resolved", note="Again")
    assert reply.status_code == 422 and "resolved already" in reply.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "acknowledged", "note": "   "}, "Please write a note"),
        ({"note": "Called them"}, "Choose acknowledge or resolve."),
        ({"status": "deleted", "note": "Called them"}, "Choose acknowledge or resolve."),
        ({"status": "resolved", "note": "x" * 5001}, "at most 5000 characters"),
        ({"status": "resolved", "note": "bell \x07"}, "without control characters"),
    ],
)
def test_a_bad_warning_action_is_422_and_keeps_the_note(client, auth, data, message):
    auth.login("support")
    acc = account(score=30)
    w = warning(acc)
    reply = post(client, f"/accounts/{acc.id}/warnings/{w.id}", **data)
    html = reply.get_data(as_text=True)
    assert reply.status_code == 422 and message in html
    if data["note"] == "Called them":
        assert ">Called them</textarea>" in html
    assert 'role="alert"' in html and fresh(w).status == "open"


def test_a_warning_of_another_account_is_404(client, auth):
    auth.login("support")
    acc, other = account(), account()
    w = warning(other)
    reply = post(client, f"/accounts/{acc.id}/warnings/{w.id}", status="resolved", note="x")
    assert reply.status_code == 404 and fresh(w).status == "open"
    big = f"/accounts/{acc.id}/warnings/99999999999"
    assert post(client, big, status="resolved", note="x").status_code == 404


def test_mark_churned_then_reactivate(client, auth):
    auth.login("admin")
    acc = troubled()
    tz = settings().calendar.tz
    day = periods.today(tz) - 3 * DAY
    reply = post(client, f"/accounts/{acc.id}/churn", churned_on=day.isoformat())
    assert reply.status_code == 303 and reply.headers["Location"] == f"/accounts/{acc.id}#churn"
    assert fresh(acc).churned_at == periods.midnight(day, tz)
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert f"Marked as churned on {day.isoformat()}. The history stays." in html
    # It leaves the live views, a filter shows it, and it keeps its history.
    assert acc.id not in listed(client)
    assert listed(client, "?status=churned") == [acc.id]
    assert "<strong>0</strong> annual value" in page(client)  # no longer revenue at risk
    assert f"Churned {day.isoformat()}" in html and "Reactivate" in html
    assert len(figures(html)["history-chart"]["data"][0]["x"]) > 10
    assert html.count("event-response") == 5
    # Back again.
    reply = post(client, f"/accounts/{acc.id}/reactivate")
    assert reply.status_code == 303
    acc = fresh(acc)
    assert acc.churned_at is None and acc.health_stale
    assert acc.id in listed(client)
    reply = post(client, f"/accounts/{acc.id}/reactivate")
    assert reply.status_code == 422 and "live already" in reply.get_data(as_text=True)


def test_churn_date_may_be_changed_while_churned(client, auth):
    auth.login("admin")
    acc = account(churned=True)
    today = periods.today(settings().calendar.tz)
    assert (
        post(client, f"/accounts/{acc.id}/churn", churned_on=today.isoformat()).status_code == 303
    )


@pytest.mark.parametrize(
    ("offset", "typed", "message"),
    [
        (1, None, "The churn date is in the future"),
        (400, None, "The churn date is in the future"),
        (None, "", "Give the day the customer left as YYYY-MM-DD."),
        (None, "2026-13-01", "Give the day the customer left as YYYY-MM-DD."),
        (None, "1/2/2026", "Give the day the customer left as YYYY-MM-DD."),
        (None, "2026-1-1", "Give the day the customer left as YYYY-MM-DD."),
        (-200, None, "Before the account&#39;s first known day"),
        (None, "0001-01-01", "Give a day from 1970 on."),
    ],
)
def test_a_bad_churn_date_is_422_and_kept(client, auth, offset, typed, message):
    auth.login("support")
    acc = account()
    answer(acc, acc.contacts[0], days_ago=100, nps=9)  # the first known day
    if typed is None:
        typed = (periods.today(settings().calendar.tz) + offset * DAY).isoformat()
    reply = post(client, f"/accounts/{acc.id}/churn", churned_on=typed)
    html = reply.get_data(as_text=True)
    assert reply.status_code == 422 and message in html, html[html.find("error-summary") :][:300]
    assert f'value="{typed}" aria-invalid="true"' in html
    assert fresh(acc).churned_at is None


def test_forged_posts_are_refused_and_change_nothing(client, auth):
    auth.login("admin")
    acc = account(score=30)
    w = warning(acc)
    contact = acc.contacts[0]
    forged = [
        (f"/accounts/{acc.id}/owner", {"owner_email": "admin@example.com"}),
        (f"/accounts/{acc.id}/contacts/{contact.id}/decision-maker", {"decision_maker": "1"}),
        (f"/accounts/{acc.id}/warnings/{w.id}", {"status": "resolved", "note": "x"}),
        (f"/accounts/{acc.id}/churn", {"churned_on": "2026-01-01"}),
    ]
    for path, data in forged:
        for token in ({}, {"csrf_token": "forged"}):
            reply = client.post(path, data={**data, **token})
            assert reply.status_code == 400, path
            assert "form" in reply.get_data(as_text=True).lower()
    db.session.expire_all()
    assert fresh(acc).owner_id is None and fresh(acc).churned_at is None
    assert not fresh(contact).is_decision_maker and fresh(w).status == "open"


def test_executives_cannot_act(client, auth):
    auth.login("executive")
    acc = account(score=30)
    w = warning(acc)
    reply = post(client, f"/accounts/{acc.id}/warnings/{w.id}", status="resolved", note="x")
    assert reply.status_code == 403 and fresh(w).status == "open"
    html = client.get(f"/accounts/{acc.id}").get_data(as_text=True)
    assert 'id="warning-' in html and "Acknowledge</button>" not in html  # read, not act


def test_the_nav_links_to_accounts(client, auth):
    auth.login("executive")
    assert '<a href="/accounts">Accounts</a>' in client.get("/responses").get_data(as_text=True)


# --- every route, every role ---------------------------------------------------------------------

#: method, path ({account}, {contact}, {warning}), form data, status for support and admin
ROUTES = [
    ("GET", "/accounts", None, 200),
    ("GET", "/accounts?status=all&band=at_risk&sort=value&dir=desc&q=acc", None, 200),
    ("GET", "/accounts/{account}", None, 200),
    ("POST", "/accounts/{account}/owner", {"owner_email": ""}, 303),
    (
        "POST",
        "/accounts/{account}/contacts/{contact}/decision-maker",
        {"decision_maker": "1"},
        303,
    ),
    ("POST", "/accounts/{account}/warnings/{warning}", {"status": "resolved", "note": "ok"}, 303),
    ("POST", "/accounts/{account}/churn", {"churned_on": "{today}"}, 303),
    ("POST", "/accounts/{account}/reactivate", {}, 303),
]
PUBLIC = ("accounts.charts.",)  # plotly.js: a published library, like any static file


def test_the_route_table_covers_every_account_route(app):
    covered = {(m, re.sub(r"\?.*", "", p)) for m, p, _, _ in ROUTES}
    names = {"account_id": "account", "contact_id": "contact", "warning_id": "warning"}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("accounts.") or rule.endpoint.startswith(PUBLIC):
            continue
        path = re.sub(r"<int:(\w+)>", lambda m: "{" + names[m.group(1)] + "}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in covered, f"{method} {rule.rule} is not in ROUTES"


def test_plotly_js_needs_no_sign_in(client):
    reply = client.get(f"/charts/plotly-{accounts.charts.PLOTLY_JS_VERSION}.min.js")
    assert reply.status_code == 200
    reply.close()


@pytest.mark.parametrize(("method", "path", "data", "allowed"), ROUTES)
@pytest.mark.parametrize("role", [None, "executive", "support", "admin"])
def test_every_account_route_with_every_role(client, auth, role, method, path, data, allowed):
    acc = account("Acc 1", score=30, churned=path.endswith("/reactivate"))
    w = warning(acc)
    contact = acc.contacts[0]
    before = (acc.owner_id, acc.churned_at, contact.is_decision_maker, w.status)
    today = periods.today(settings().calendar.tz).isoformat()
    path = path.format(account=acc.id, contact=contact.id, warning=w.id)
    if role:
        auth.login(role)
    if method == "GET":
        reply = client.get(path)
        expected = 302 if role is None else 200
    else:
        form = {k: v.format(today=today) for k, v in data.items()}
        form["csrf_token"] = csrf_from(client.get("/login").get_data(as_text=True))
        reply = client.post(path, data=form)
        expected = {None: 302, "executive": 403}.get(role, allowed)
    assert reply.status_code == expected, reply.get_data(as_text=True)[:500]
    if expected == 302:
        assert reply.headers["Location"].startswith("/login?next=")
    if method == "POST" and role in (None, "executive"):
        acc, contact, w = fresh(acc), fresh(contact), fresh(w)
        assert (acc.owner_id, acc.churned_at, contact.is_decision_maker, w.status) == before


# --- what drives the complaints (issue 12) ------------------------------------------------


def test_account_page_shows_the_themes_that_drive_its_detractors(client, auth, stored_answer):
    stored_answer("Tema A/S", nps=3, reason="Produktet er super, men faktureringen er elendig")
    stored_answer("Tema A/S", nps=2, reason="The invoice was wrong again and support was useless")
    stored_answer("Tema A/S", nps=9, reason="Fast delivery, great product")
    stored_answer("Tema A/S", nps=8, reason="Old news: the invoice was terrible", days_ago=400)
    account = stored_answer("Andet A/S", nps=1, reason="The delivery was awful")
    other = db.session.scalar(sa.select(Account).where(Account.name == "Tema A/S"))
    assert account.id != other.id
    auth.login("executive")
    html = client.get(f"/accounts/{other.id}").get_data(as_text=True)
    section = html[html.index('id="themes"') : html.index('id="contacts"')]
    rows = re.findall(
        r'<tr data-theme="(\w+)">.*?<td class="num">(\d+)</td><td class="num">(\d+)</td>\s*'
        r'<td class="num">([^<]+)</td><td class="num">(\d+)</td>',
        section,
        re.S,
    )
    by_theme = {theme: (int(m), int(n), share, int(d)) for theme, m, n, share, d in rows}
    # billing: 2 negative mentions of 3 negative in all (support the third), both detractors'
    assert by_theme["billing"] == (2, 2, "67 %", 2)
    assert by_theme["support"] == (1, 1, "33 %", 1)
    assert by_theme["quality"][:2] == (2, 0) and by_theme["delivery"][:2] == (1, 0)
    assert [theme for theme, *_ in rows][:2] == ["billing", "support"]  # most negative first
    link = f"/responses?account={other.id}&amp;theme=billing&amp;sentiment=negative"
    assert f'href="{link}">Billing and payment</a>' in section
    assert "No comment of the last 365 days" not in html
    quiet = stored_answer("Stille A/S", nps=9)
    empty = client.get(f"/accounts/{quiet.id}").get_data(as_text=True)
    assert "No comment of the last 365 days mentions a theme." in empty
