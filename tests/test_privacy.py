"""Privacy requests (``loyalty.privacy.requests``): a person's data exported as JSON, then
erased everywhere it was, with the counts on the dashboard unchanged and a receipt that
holds no personal data."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from test_cases import answer, staff

from loyalty import periods
from loyalty.accounts.services import Invitee, upsert_contact
from loyalty.dashboard import queries, rollups
from loyalty.db import db
from loyalty.models import ERASED_TEXT, Case, Contact, Invitation, PrivacyRequest, Response
from loyalty.outreach.webhooks import add_webhook
from loyalty.privacy import requests
from loyalty.triage import cases

NAME, EMAIL = "Mette Hansen", "mette@example.com"
COMMENT = "Fakturaen var forkert igen, jeg er træt af det"


@pytest.fixture
def person(app, client, invite):
    """Mette answered as a detractor with a comment; her case has a note naming her and an
    e-mail reply to her (in the outbox folder); a webhook delivery carries her answer."""
    add_webhook("https://hooks.example.com/loyalty")
    db.session.commit()
    _, token = invite(email=EMAIL, name=NAME, account="Fjord A/S", language="da")
    response = answer(client, token, nps="2", improve=COMMENT)
    case = db.session.scalars(sa.select(Case)).one()
    lead = staff()
    cases.add_note(case, lead, f"Ringede til {NAME} ({EMAIL}), hun vil have en kreditnota.")
    contact = db.session.get(Contact, response.contact_id)
    cases.send_reply(case, lead, contact, "Hej Mette, vi retter fakturaen i dag.")
    db.session.commit()
    # someone else, who must keep everything
    _, other = invite(email="ole@example.com", name="Ole Olsen", account="Fjord A/S")
    answer(client, other, nps="9", improve="Fin service")
    return contact


def _dashboard_counts() -> tuple:
    rollups.refresh_stale()
    period = periods.Period(periods.today(rollups.tz()), periods.today(rollups.tz()))
    days = queries.day_counts(period, queries.Filters())
    return tuple(sorted((str(k), sorted(v.items())) for _, k, v in days))


def _everything_as_text() -> str:
    """Every text column of every table, as one string to search."""
    found = []
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, sa.String | sa.Text)]
        if columns:
            for row in db.session.execute(sa.select(*columns)):
                found.extend(str(v) for v in row if v is not None)
    return "\n".join(found).lower()


def test_the_export_holds_everything_about_her(person, app):
    document = requests.export(requests.find_person("Mette@Example.com"))
    assert document["contact"]["email"] == EMAIL and document["account"]["name"] == "Fjord A/S"
    (response,) = document["responses"]
    assert response["nps"] == 2
    assert any(a["text"] == COMMENT and a["sentiment"] for a in response["answers"])
    assert any(t["id"] == "billing" for a in response["answers"] for t in a["themes"])
    assert response["flag"]["case_id"] == document["cases"][0]["id"]
    history = [line["kind"] for line in document["cases"][0]["history"]]
    assert "note" in history and "email_sent" in history
    assert any(NAME in (m["body"] or "") for m in document["mentions_in_case_history"])
    assert len(document["emails_in_outbox"]) == 1  # the reply
    (delivery,) = document["webhook_deliveries"]
    carried = json.dumps(delivery["payload"], ensure_ascii=False)
    assert EMAIL in carried and COMMENT in carried
    assert "ole@example.com" not in json.dumps(document)
    assert document["summary"][0].startswith(f"{NAME} <{EMAIL}>")
    (receipt,) = db.session.scalars(sa.select(PrivacyRequest)).all()
    assert receipt.kind == "export" and json.loads(receipt.counts)["responses"] == 1


def test_erased_she_is_nowhere_and_the_counts_stand(person, app, client, invite):
    before = _dashboard_counts()
    outbox = app.config["MAIL_URL"].removeprefix("outbox:")
    receipt = requests.erase(person)
    text = _everything_as_text()
    for trace in (EMAIL, NAME.lower(), "fakturaen", "kreditnota, hun"):
        assert trace.lower() not in text, trace
    assert "ole olsen" in text and "fin service" in text  # the other customer keeps his
    assert _dashboard_counts() == before
    rollups.rebuild()
    assert _dashboard_counts() == before  # counted again from the rows: the same
    response = db.session.scalars(sa.select(Response).where(Response.nps == 2)).one()
    written = [a.text for a in response.answers if a.text]
    assert written and set(written) == {ERASED_TEXT}
    from loyalty.survey.responses import count_outdated

    for erased in response.answers:
        erased.scorer_version = 0  # even from an older scorer: never scored again
    db.session.commit()
    assert count_outdated() == 0
    from pathlib import Path

    assert not any(EMAIL in p.read_text(errors="replace") for p in Path(outbox).glob("*.eml"))
    counts = json.loads(receipt.counts)
    assert counts["comments"] == len(written) and counts["webhook_deliveries"] == 1
    assert counts["emails_in_outbox"] == 1 and counts["case_history_lines"] >= 2
    assert EMAIL not in requests.receipt_text(receipt) and NAME not in requests.receipt_text(
        receipt
    )

    # She turns up again in an event: recognised, left alone, never asked.
    again = upsert_contact(
        Invitee(email=EMAIL, name=NAME, account="Fjord A/S", segment="b2b", language="da")
    )
    assert again.id == person.id and again.erased_at is not None and not again.reachable
    with pytest.raises(requests.PrivacyError, match="was erased"):
        requests.find_person(EMAIL)


def test_her_old_survey_link_opens_what_an_unknown_one_does(app, client, invite):
    _, token = invite(email=EMAIL, name=NAME)
    requests.erase(requests.find_person(EMAIL))
    erased = client.get(f"/s/{token}")
    unknown = client.get("/s/" + "x" * len(token))
    assert erased.status_code == unknown.status_code == 404
    assert erased.get_data() == unknown.get_data()


def test_the_commands(person, runner, tmp_path):
    out = tmp_path / "mette.json"
    result = runner.invoke(args=["privacy", "export", EMAIL, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["contact"]["name"] == NAME
    refused = runner.invoke(args=["privacy", "erase", EMAIL], input="n\n")
    assert refused.exit_code == 1 and db.session.get(Contact, person.id).erased_at is None
    result = runner.invoke(args=["privacy", "erase", EMAIL, "--yes"])
    assert result.exit_code == 0 and "Erasure receipt" in result.output
    assert EMAIL not in result.output and NAME not in result.output
    for args in (["privacy", "erase", EMAIL, "--yes"], ["privacy", "export", "nobody@x.dk"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and "Error:" in result.output, result.output
    bad = runner.invoke(args=["privacy", "export", "not an address"])
    assert bad.exit_code == 1 and "email:" in bad.output


def test_retention_removes_what_is_older_by_the_same_rules(person, app, client, invite):
    """Older than the limit: comments' words, history text, finished deliveries, outbox
    mails and quiet contacts go; newer ones and every count stay."""
    import datetime as dt
    import os
    from pathlib import Path

    from loyalty import signals
    from loyalty.models import CaseEvent, WebhookDelivery, utcnow
    from loyalty.privacy import retention

    assert retention.apply() == {}  # off by default
    _, token = invite(email="fresh@example.com", name="Frida Frisk")
    answer(client, token, nps="3", improve="Leveringen var alt for sen")
    db.session.execute(sa.update(WebhookDelivery).values(status="delivered"))
    db.session.commit()
    app.config["RETENTION_MONTHS"] = 12
    later = utcnow() + dt.timedelta(days=400)
    # Frida answered again 100 days before that moment: she and her new words stay.
    fresh = db.session.scalars(sa.select(Response).where(Response.nps == 3)).one()
    fresh.submitted_at = later - dt.timedelta(days=100)
    db.session.execute(
        sa.update(Invitation).where(Invitation.contact_id == fresh.contact_id)
        .values(created_at=later - dt.timedelta(days=100))
    )  # fmt: skip
    db.session.commit()
    outbox = Path(app.config["MAIL_URL"].removeprefix("outbox:"))
    old_mail = next(outbox.glob("*.eml"))
    os.utime(old_mail, (0, 0))
    before = _dashboard_counts()
    signals.dispatch_tick.send(app, now=later)
    text = _everything_as_text()
    for trace in (EMAIL, NAME.lower(), "fakturaen", "ole@example.com", "kreditnota"):
        assert trace not in text, trace
    assert "frida frisk" in text and "leveringen var alt for sen" in text
    assert not old_mail.exists()
    # every delivery was finished and made over a year before: all gone
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0
    assert all(
        e.body in (None, "", ERASED_TEXT)
        for e in db.session.scalars(
            sa.select(CaseEvent).where(CaseEvent.created_at < later - dt.timedelta(days=365))
        )
    )
    receipts = db.session.scalars(sa.select(PrivacyRequest)).all()
    assert {r.via for r in receipts} == {"retention"} and len(receipts) == 2  # Mette, Ole
    assert _dashboard_counts() == before
