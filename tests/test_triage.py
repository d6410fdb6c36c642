"""The triage queue and case page: order, filters, paging, highlights, escaping, every action
as a CSRF-checked POST, and every staff route walked with every role."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import csrf_from
from test_cases import answer, staff

from loyalty import storage
from loyalty.db import db
from loyalty.models import Account, Answer, Case, CaseEvent, Contact, Flag, Response, utcnow
from loyalty.triage import cases
from loyalty.triage import views as triage

# --- helpers ---------------------------------------------------------------------------------

_seq = iter(range(1, 1_000_000))


def seed_case(
    *,
    account: str | None = None,
    severity: int = 1,
    age_hours: float = 1,
    overdue: bool = False,
    segment: str = "b2c",
    language: str = "en",
    text: str = "Slow delivery",
    status: str = "open",
    assignee=None,
) -> Case:
    """A case straight in the database (no survey round trip), for queue tests."""
    n = next(_seq)
    now = utcnow()
    acc = Account(name=account or f"Account {n}", segment=segment, annual_value=Decimal(0))
    contact = Contact(
        account=acc, email=f"c{n}@example.com", name=f"Customer {n}", language=language
    )
    response = Response(
        contact=contact, account=acc, survey="post-sale", survey_version=1, language=language,
        nps=3, submitted_at=now, updated_at=now,
    )  # fmt: skip
    response.answers.append(
        Answer(question="reason", text=text, polarity=-0.5, sentiment="negative")
    )
    opened = now - dt.timedelta(hours=age_hours)
    case = Case(
        account=acc, severity=severity, status=status, opened_at=opened, updated_at=opened,
        first_contact_due_at=now + dt.timedelta(minutes=-1 if overdue else 300),
        assignee=assignee, resolved_at=now if status == "resolved" else None,
        outcome="recovered" if status == "resolved" else None, language=language,
    )  # fmt: skip
    db.session.add_all([acc, contact, response, case])
    db.session.add(Flag(response=response, case=case, rules="detractor", severity=severity))
    db.session.commit()
    return case


def queue_ids(client, query: str = "") -> list[int]:
    reply = client.get(f"/triage{query}")
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return [int(n) for n in re.findall(r'data-case="(\d+)"', reply.get_data(as_text=True))]


def post(client, path: str, **data: str):
    token = csrf_from(client.get("/triage").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


# --- the queue ---------------------------------------------------------------------------------


def test_queue_is_worst_first_overdue_then_severity_then_age(client, auth):
    auth.login("support")
    young_mild = seed_case(severity=1, age_hours=1)
    old_mild = seed_case(severity=1, age_hours=30)
    severe = seed_case(severity=3, age_hours=2)
    late_mild = seed_case(severity=1, age_hours=3, overdue=True)
    late_severe = seed_case(severity=4, age_hours=1, overdue=True)
    seed_case(status="resolved")
    assert queue_ids(client) == [
        late_severe.id,
        late_mild.id,
        severe.id,
        old_mild.id,
        young_mild.id,
    ]
    html = client.get("/triage").get_data(as_text=True)
    assert html.count("Overdue</span>") == 2
    assert "Cases 1–5 of 5" in html


def test_queue_filters(client, auth):
    auth.login("support", email="me@example.com")
    me = staff("me@example.com")
    da = seed_case(language="da", account="Hansen & SØN", segment="b2b", assignee=me)
    en = seed_case(language="en", account="100% Organic", severity=3)
    done = seed_case(status="resolved", account="Done Ltd")
    assert queue_ids(client, "?language=da") == [da.id]
    assert queue_ids(client, "?segment=b2b") == [da.id]
    assert queue_ids(client, "?assignee=me") == [da.id]
    assert queue_ids(client, f"?assignee={me.id}") == [da.id]
    assert queue_ids(client, "?assignee=none") == [en.id]
    assert queue_ids(client, "?account=hansen") == [da.id]
    assert queue_ids(client, "?account=s%C3%B8n") == [da.id]  # "søn": Danish letters too
    assert queue_ids(client, "?account=100%25") == [en.id]  # % is a character, not a wildcard
    assert queue_ids(client, "?account=%25") == [en.id]
    assert queue_ids(client, "?severity=3") == [en.id]
    assert queue_ids(client, "?status=resolved") == [done.id]
    assert sorted(queue_ids(client, "?status=all")) == [da.id, en.id, done.id]
    assert queue_ids(client, "?status=in_progress") == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?status=closed", "Unknown status"),
        ("?assignee=somebody", "Unknown assignee"),
        ("?segment=b2x", "Segment must be"),
        ("?language=sv", "Language must be"),
        ("?severity=9", "Severity must be"),
        ("?severity=-1", "Severity must be"),
        ("?after=garbage", "page link is not valid"),
        ("?after=1.2.9999999999999999999.3", "page link is not valid"),
        ("?after=1.2.1700000000000000.9999999999999999999", "page link is not valid"),
        ("?account=" + "x" * 201, "at most 200"),
        ("?account=a%00b", "on one line"),
    ],
)
def test_bad_filters_get_a_clear_400(client, auth, query, message):
    auth.login("support")
    seed_case()
    reply = client.get(f"/triage{query}")
    assert reply.status_code == 400 and message in reply.get_data(as_text=True)


def test_keyset_paging_walks_every_case_once(client, auth, monkeypatch):
    auth.login("support")
    expected = [
        seed_case(severity=1 + i % 3, age_hours=i % 4, overdue=i % 5 == 0) for i in range(7)
    ]
    monkeypatch.setattr(triage, "PAGE_SIZE", 3)
    seen, query, pages = [], "", 0
    while True:
        reply = client.get(f"/triage{query}")
        html = reply.get_data(as_text=True)
        seen += [int(n) for n in re.findall(r'data-case="(\d+)"', html)]
        pages += 1
        match = re.search(r'href="/triage\?([^"]+)" rel="next"', html)
        if not match:
            break
        query = "?" + match.group(1).replace("&amp;", "&")
    assert pages == 3 and len(seen) == 7 and sorted(seen) == sorted(c.id for c in expected)
    assert "Cases 7–7 of 7" in html and "First page" in html
    # The order across pages is the order of one long page.
    monkeypatch.setattr(triage, "PAGE_SIZE", 50)
    assert queue_ids(client) == seen


def test_queue_filters_survive_paging(client, auth, monkeypatch):
    auth.login("support")
    for _ in range(3):
        seed_case(language="da")
    seed_case(language="en")
    monkeypatch.setattr(triage, "PAGE_SIZE", 2)
    html = client.get("/triage?language=da").get_data(as_text=True)
    next_link = (
        re.search(r'href="(/triage\?[^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    )
    assert "language=da" in next_link
    assert len(queue_ids(client, next_link.removeprefix("/triage"))) == 1


def count_queries(app, action) -> int:
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


def test_queue_page_costs_the_same_queries_for_3_or_30_cases(app, client, auth):
    auth.login("support")
    lead = staff()
    for _ in range(3):
        seed_case(assignee=lead)
    few = count_queries(app, lambda: client.get("/triage"))
    for i in range(27):
        seed_case(assignee=lead if i % 2 else None, severity=1 + i % 4)
    many = count_queries(app, lambda: client.get("/triage"))
    assert many == few <= 10


# --- the case page ---------------------------------------------------------------------------


ANGRY = "Terrible service <script>alert(1)</script> and a useless, rude helpdesk. We will cancel!"


@pytest.fixture
def flagged(app, client, invite):
    """A real survey answer from an English B2B contact, and an earlier, happier one."""
    earlier, earlier_token = invite(account="Acme <A/S>", email="mette@acme.example.com")
    answer(client, earlier_token, nps="9", reason="Good <b>before</b>")
    invitation, token = invite(account="Acme <A/S>", email="mette@acme.example.com")
    invite(account="Acme <A/S>", email="colleague@acme.example.com", name="Kim <i>Colleague</i>")
    answer(client, token, nps="2", reason=ANGRY)
    return db.session.scalars(sa.select(Case)).one()


def test_case_page_shows_highlights_history_and_contacts_as_text(client, auth, flagged):
    auth.login("support")
    reply = client.get(f"/triage/{flagged.id}")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 200
    assert "<script>" not in html and "<b>before</b>" not in html
    unmarked = re.sub(r"</?mark[^>]*>", "", html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in unmarked
    assert "Acme &lt;A/S&gt;" in html and "Kim &lt;i&gt;Colleague&lt;/i&gt;" in html
    marked = re.findall(r'<mark class="negative"[^>]*>([^<]+)</mark>', html)
    assert {"Terrible", "useless", "rude"} <= set(marked)
    assert "cancel" in marked
    assert "Good &lt;b&gt;before&lt;/b&gt;" in html  # the earlier answer
    assert "colleague@acme.example.com" in html  # the account's other contacts
    assert "The customer's earlier answers" in html
    for form in ("contact", "reply", "status", "resolve", "assign", "note"):
        assert f'id="{form}" class="action"' in html
    assert html.count('name="csrf_token"') >= 7


def test_executives_read_but_see_no_actions(client, auth, flagged):
    auth.login("executive")
    html = client.get(f"/triage/{flagged.id}").get_data(as_text=True)
    assert "Work the case" not in html and "Terrible" in html


def test_unknown_case_is_404(client, auth):
    auth.login("support")
    assert client.get("/triage/999").status_code == 404
    assert client.get("/triage/99999999999999999999999").status_code == 404
    assert client.get("/triage/-1").status_code == 404
    assert post(client, "/triage/999/note", body="x").status_code == 404


def test_actions_by_post_redirect_back_and_record_history(client, auth, flagged):
    auth.login("support")
    lead = staff("support@example.com")
    path = f"/triage/{flagged.id}"
    reply = post(client, f"{path}/contact", channel="phone", body="Called <Mette>; sorry said.")
    assert reply.status_code == 303 and reply.headers["Location"] == f"{path}#contact"
    assert "Contact logged." in client.get(path).get_data(as_text=True)
    assert post(client, f"{path}/note", body="Sent flowers").status_code == 303
    assert post(client, f"{path}/status", status="waiting_on_customer").status_code == 303
    assert post(client, f"{path}/assign", assignee_id=str(lead.id)).status_code == 303
    assert post(client, f"{path}/resolve", outcome="recovered", note="Happy").status_code == 303
    assert post(client, f"{path}/reopen", reason="Called back").status_code == 303
    assert post(client, f"{path}/assign", assignee_id="none").status_code == 303
    db.session.expire_all()
    case = db.session.get(Case, flagged.id)
    assert [e.kind for e in case.history] == [
        "opened", "contact", "status", "note", "status", "assigned", "resolved", "reopened",
        "assigned",
    ]  # fmt: skip
    assert {e.user.email for e in case.history if e.user} == {"support@example.com"}
    html = client.get(path).get_data(as_text=True)
    assert "Called &lt;Mette&gt;; sorry said." in html


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        ("note", {"body": ""}, "Please write the note."),
        ("note", {"body": "x" * 5001}, "at most 5000"),
        ("contact", {"channel": "telepathy", "body": "Hi"}, "how you contacted"),
        ("status", {"status": "resolved"}, "resolve with an outcome"),
        ("resolve", {"note": "forgot the outcome"}, "Choose an outcome"),
        ("reopen", {}, "Only a resolved case"),
        ("assign", {"assignee_id": "12345"}, "Unknown staff member"),
        ("assign", {"assignee_id": "x"}, "Unknown staff member"),
        ("reply", {"contact_id": "", "body": "Hi"}, "Choose who the reply goes to"),
        ("reply", {"contact_id": "99999", "body": "Hi"}, "Choose who the reply goes to"),
    ],
)
def test_bad_actions_get_422_with_the_reason_and_keep_the_text(
    client, auth, flagged, action, data, message
):
    auth.login("admin")
    reply = post(client, f"/triage/{flagged.id}/{action}", **data)
    html = reply.get_data(as_text=True)
    assert reply.status_code == 422 and message in html
    if action == "resolve":
        assert "forgot the outcome</textarea>" in html
    db.session.expire_all()
    assert [e.kind for e in db.session.get(Case, flagged.id).history] == ["opened"]


def test_actions_need_the_csrf_token(client, auth, flagged):
    auth.login("support")
    reply = client.post(f"/triage/{flagged.id}/note", data={"body": "sneaky"})
    assert reply.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(CaseEvent.id))) == 1


def test_reply_form_sends_through_smtp(app, client, auth, flagged, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    auth.login("support")
    html = client.get(f"/triage/{flagged.id}").get_data(as_text=True)
    assert "Thank you for telling us about your experience" in html  # the English template
    contact_id = re.search(r'name="contact_id" id="reply-contact">\s*<option value="(\d+)"', html)
    reply = post(
        client,
        f"/triage/{flagged.id}/reply",
        contact_id=contact_id.group(1),
        body="We are sorry <3",
    )
    assert reply.status_code == 303
    (message,) = smtp_server.messages
    assert message["To"].addresses[0].addr_spec == "mette@acme.example.com"
    assert message["Reply-To"] == "support@example.com"
    page = client.get(f"/triage/{flagged.id}").get_data(as_text=True)
    assert "Reply sent to mette@acme.example.com." in page and "We are sorry &lt;3" in page


def test_refused_reply_gets_a_clear_502_and_records_nothing(
    app, client, auth, flagged, smtp_server
):
    app.config["MAIL_URL"] = smtp_server.url
    smtp_server.refuse = "550 Mailbox unavailable"
    auth.login("support")
    contact = cases.reply_contacts(flagged)[0]
    reply = post(client, f"/triage/{flagged.id}/reply", contact_id=str(contact.id), body="Sorry")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 502 and "Nothing was sent" in html and ">Sorry</textarea>" in html
    db.session.expire_all()
    case = db.session.get(Case, flagged.id)
    assert [e.kind for e in case.history] == ["opened"] and case.first_contact_at is None


# --- every staff route, every role -----------------------------------------------------------

#: Routes this table does not walk: public ones, and the account, privacy, audit and admin
#: pages, whose own tables (tests/test_accounts_views.py, tests/test_privacy_views.py,
#: tests/test_audit.py, tests/test_admin_*.py) walk every route with every role.
PUBLIC = (
    "static", "auth.", "survey.", "api.", "index", "healthz", "accounts.", "privacy.", "audit.",
    "admin",
)  # fmt: skip
#: method, path (``{case}`` is a case's id), form data, status for support and admin
STAFF_ROUTES = [
    ("GET", "/responses", None, 200),
    ("GET", "/funnel", None, 200),
    ("GET", "/dashboard", None, 200),
    ("GET", "/dashboard?grain=week&segment=b2b", None, 200),
    ("GET", "/reports/executive-monthly", None, 200),
    ("GET", "/triage", None, 200),
    ("GET", "/triage?status=all&severity=1", None, 200),
    ("GET", "/triage/{case}", None, 200),
    ("GET", "/responsiveness", None, 200),
    ("POST", "/triage/{case}/assign", {"assignee_id": "none"}, 303),
    ("POST", "/triage/{case}/note", {"body": "A note"}, 303),
    ("POST", "/triage/{case}/contact", {"channel": "phone", "body": "Called"}, 303),
    ("POST", "/triage/{case}/status", {"status": "in_progress"}, 303),
    ("POST", "/triage/{case}/resolve", {"outcome": "recovered"}, 303),
    ("POST", "/triage/{case}/reopen", {"reason": "again"}, 303),
    ("POST", "/triage/{case}/reply", {"body": "Sorry", "contact_id": "{contact}"}, 303),
]


def test_the_route_table_covers_every_staff_route(app):
    covered = {(m, re.sub(r"\?.*", "", p)) for m, p, _, _ in STAFF_ROUTES}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(PUBLIC):
            continue
        path = re.sub(r"<int:case_id>", "{case}", rule.rule)
        path = path.replace("<name>", "executive-monthly")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in covered, f"{method} {rule.rule} is not in STAFF_ROUTES"


@pytest.mark.parametrize(("method", "path", "data", "allowed"), STAFF_ROUTES)
@pytest.mark.parametrize("role", [None, "executive", "support", "admin"])
def test_every_staff_route_with_every_role(client, auth, role, method, path, data, allowed):
    case = seed_case()
    if path.endswith("/reopen"):
        case.status, case.outcome, case.resolved_at = "resolved", "recovered", utcnow()
        db.session.commit()
    contact_id = case.flags[0].response.contact_id
    path = path.format(case=case.id)
    if role:
        auth.login(role)
    if method == "GET":
        reply = client.get(path)
        expected = 302 if role is None else 200
    else:
        form = {k: v.format(contact=contact_id) for k, v in data.items()}
        form["csrf_token"] = csrf_from(client.get("/login").get_data(as_text=True))
        reply = client.post(path, data=form)
        expected = {None: 302, "executive": 403}.get(role, allowed)
    assert reply.status_code == expected, reply.get_data(as_text=True)[:500]
    if expected == 302:
        assert reply.headers["Location"].startswith("/login?next=")
    history = len(db.session.get(Case, case.id).history) if role else 0
    if method == "POST" and role in (None, "executive"):
        db.session.expire_all()
        assert len(db.session.get(Case, case.id).history) == history  # nothing happened


# --- themes on the case page and in the flag rules (issue 12) -----------------------------

MIXED_DA = "Produktet er super, men faktureringen er elendig"


def test_case_page_marks_each_themes_words_in_its_own_polarity(client, auth, invite):
    _, token = invite(language="da", account="Faktura <A/S>")
    answer(client, token, nps="4", reason=MIXED_DA)
    case = db.session.scalars(sa.select(Case)).one()
    auth.login("support")
    html = client.get(f"/triage/{case.id}").get_data(as_text=True)
    themed = {word: tone for tone, word in re.findall(
        r'<mark class="theme (\w+)" data-theme="\w+"[^>]*>([^<]+)</mark>', html)}  # fmt: skip
    assert themed == {"faktureringen": "negative", "Produktet": "positive"}
    assert 'data-theme="billing" title="Billing and payment: negative (' in html
    assert re.search(r'<mark class="negative"[^>]*>elendig</mark>', html)  # its sentiment word
    assert "Billing and payment: negative</a>" in html and "Product quality: positive</a>" in html


def test_a_theme_rule_flags_negative_billing_from_b2b_accounts_only(app, client, invite):
    app.config["FLAG_RULES"] = {
        "billing_b2b": {"theme": "billing", "sentiment": "negative", "segment": "b2b"},
        "negative_comment": None,
    }
    _, b2b = invite(language="da", account="Erhverv A/S", segment="b2b")
    _, b2c = invite(language="da", account="Privat", segment="b2c")
    _, happy = invite(language="en", account="Glad A/S", segment="b2b")
    answer(client, b2b, nps="9", reason=MIXED_DA)
    answer(client, b2c, nps="9", reason=MIXED_DA)
    answer(client, happy, nps="9", reason="the invoices are always correct, great")
    flags = db.session.scalars(sa.select(Flag)).all()
    assert [(f.response.account.name, f.rules) for f in flags] == [("Erhverv A/S", "billing_b2b")]
