"""Accounts and contacts, found and written in one place: one normalised address per
contact, accounts by reference else by name, erased contacts left alone, the first bounce
and unsubscribe kept; and the import, the CLI and the API ending in the same contact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from loyalty.accounts.services import (
    Invitee,
    InviteError,
    find_account,
    find_contact,
    mark_bounced,
    normalise_email,
    put_contact,
    unsubscribe,
    upsert_account,
    upsert_contact,
)
from loyalty.db import db
from loyalty.models import Account, Contact, utcnow

T1 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
ACME_TAKEN = "account: 'Acme A/S' is the name of another account"


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def reloaded(obj):
    db.session.commit()
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def account(name: str = "Acme A/S", ref: str | None = None, **fields) -> Account:
    fields = {"segment": "b2b", "annual_value": None, **fields}
    return upsert_account(name=name, external_ref=ref, **fields)


# --- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("mette@acme.dk", "mette@acme.dk"),
        ("Mette@Acme.DK", "mette@acme.dk"),
        ("METTE@ACME.DK", "mette@acme.dk"),
        ("MØller@Æble.dk", "møller@æble.dk"),
    ],
)
def test_normalise_email(typed, stored):
    assert normalise_email(typed) == stored


@pytest.mark.parametrize(
    "typed",
    ["", "   ", " mette@acme.dk", "mette@acme.dk ", "mette @acme.dk", "not-an-email",
     "a@b@acme.dk", "mette@acme", "mette@acme.dk\r\nBcc: evil@example.com"],
)  # fmt: skip
def test_normalise_email_refuses(typed):
    with pytest.raises(InviteError) as caught:
        normalise_email(typed)
    assert str(caught.value).startswith("email: ") and len(str(caught.value)) > len("email: ")
    assert isinstance(caught.value, ValueError)


# --- accounts ----------------------------------------------------------------------------


def test_an_account_is_found_by_its_reference(app):
    first = account("Acme A/S", "C-1", annual_value=Decimal("100.00"))
    db.session.commit()
    again = account("Acme Group", "C-1", segment="b2c")
    assert again is first
    stored = reloaded(again)
    assert (stored.name, stored.segment, stored.external_ref) == ("Acme Group", "b2c", "C-1")
    assert stored.annual_value == Decimal("100.00")  # no value given: the old one stays
    assert count(Account) == 1


def test_an_account_is_found_by_its_name(app):
    first = account("Jensen Familie", segment="b2c")
    db.session.commit()
    assert account("Jensen Familie", segment="b2c") is first
    # known by name until now; from here on also by its reference
    with_ref = account("Jensen Familie", "J-1", segment="b2c", annual_value=Decimal("5.00"))
    assert with_ref is first
    stored = reloaded(with_ref)
    assert (stored.external_ref, stored.annual_value) == ("J-1", Decimal("5.00"))
    assert find_account(external_ref="J-1") is stored
    assert find_account(name="Jensen Familie") is stored
    assert find_account(external_ref="nope", name="Jensen Familie") is stored
    assert find_account(external_ref="nope") is None
    assert count(Account) == 1


@pytest.mark.parametrize(
    ("name", "ref", "message"),
    [
        ("Acme A/S", "C-2", f"{ACME_TAKEN} (external ref 'C-1')"),
        ("Acme A/S", "C-9", f"{ACME_TAKEN} (external ref 'C-1')"),
        ("Jensen", "C-2", "account: 'Jensen' is the name of another account (external ref 'J-1')"),
    ],
)
def test_a_name_belongs_to_one_account(app, name, ref, message):
    account("Acme A/S", "C-1")
    account("Beta ApS", "C-2")
    account("Jensen", "J-1")
    db.session.commit()
    with pytest.raises(InviteError) as caught:
        account(name, ref)
    assert str(caught.value).startswith(message)
    db.session.rollback()
    names = db.session.scalars(sa.select(Account.name).order_by(Account.external_ref)).all()
    assert names == ["Acme A/S", "Beta ApS", "Jensen"]


# --- contacts ----------------------------------------------------------------------------


def test_put_contact_creates_and_updates(app):
    acme, beta = account("Acme A/S", "C-1"), account("Beta ApS", "C-2")
    created = put_contact(acme, email="mette@acme.dk", name="Mette", language="da")
    db.session.commit()
    moved = put_contact(beta, email="mette@acme.dk", name="Mette Hansen", language="en")
    assert moved is created
    stored = reloaded(moved)
    assert (stored.account.name, stored.name, stored.language) == ("Beta ApS", "Mette Hansen", "en")
    assert count(Contact) == 1


def test_put_contact_without_update_keeps_who_they_are(app):
    acme, beta = account("Acme A/S", "C-1"), account("Beta ApS", "C-2")
    put_contact(acme, email="mette@acme.dk", name="Mette Hansen", language="da")
    db.session.commit()
    kept = put_contact(beta, email="mette@acme.dk", name="M. H.", language="en", update=False)
    stored = reloaded(kept)
    assert (stored.account.name, stored.name, stored.language) == ("Acme A/S", "Mette Hansen", "da")
    # update=False still creates a contact nobody knew
    new = put_contact(beta, email="ole@beta.dk", name="Ole", language="en", update=False)
    assert reloaded(new).name == "Ole"


def test_an_erased_contact_is_never_written_back(app):
    acme, beta = account("Acme A/S", "C-1"), account("Beta ApS", "C-2")
    contact = put_contact(acme, email="mette@acme.dk", name="erased", language="da")
    contact.erased_at = utcnow()
    db.session.commit()
    again = put_contact(beta, email="mette@acme.dk", name="Mette Hansen", language="en")
    assert again is contact
    stored = reloaded(again)
    assert (stored.account.name, stored.name, stored.language) == ("Acme A/S", "erased", "da")
    invitee = Invitee("Mette@Acme.dk", "Mette Hansen", "Beta ApS", "b2b", "en")
    assert reloaded(upsert_contact(invitee)).name == "erased"


def test_upsert_contact_through_an_invitee(app):
    first = upsert_contact(
        Invitee("Mette@Acme.dk", "  Mette Hansen ", " Acme A/S ", "b2b", "da", Decimal("9.00"))
    )
    db.session.commit()
    again = upsert_contact(Invitee("mette@ACME.dk", "Mette H.", "Acme A/S", "b2b", "en"))
    assert again is first
    stored = reloaded(again)
    assert (stored.email, stored.name, stored.language) == ("mette@acme.dk", "Mette H.", "en")
    assert (stored.account.name, stored.account.annual_value) == ("Acme A/S", Decimal("9.00"))
    assert find_contact("mette@acme.dk") is stored
    assert (count(Contact), count(Account)) == (1, 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "nope"}, "email: "),
        ({"name": ""}, "name: must not be empty"),
        ({"name": "Mette\r\nBcc: evil@example.com"}, "name: must not contain line breaks"),
        ({"account": "x" * 201}, "account: at most 200 characters"),
        ({"segment": "b2g"}, "segment: must be one of b2b, b2c"),
        ({"language": "sv"}, "language: must be one of da, en"),
    ],
)
def test_upsert_contact_refuses_a_bad_invitee(app, changes, message):
    fields = {"email": "mette@acme.dk", "name": "Mette", "account": "Acme A/S",
              "segment": "b2b", "language": "da", **changes}  # fmt: skip
    with pytest.raises(InviteError) as caught:
        upsert_contact(Invitee(**fields))
    assert str(caught.value).startswith(message)
    assert (count(Contact), count(Account)) == (0, 0)


# --- bounces and unsubscribes ------------------------------------------------------------


def _contact() -> Contact:
    contact = upsert_contact(Invitee("mette@acme.dk", "Mette", "Acme A/S", "b2b", "da"))
    db.session.commit()
    return contact


def test_the_earliest_bounce_is_kept(app):
    contact = _contact()
    assert mark_bounced("Mette@Acme.dk", at=T1) is contact
    db.session.commit()
    assert mark_bounced("mette@acme.dk", at=T2) is contact
    assert reloaded(contact).bounced_at == T1
    assert reloaded(contact).unreachable_reason == "bounced"


def test_a_bounce_without_a_time_is_now(app):
    contact = _contact()
    before = utcnow()
    mark_bounced("mette@acme.dk")
    assert before <= reloaded(contact).bounced_at <= utcnow()


def test_a_bounce_for_nobody_is_none(app):
    _contact()
    assert mark_bounced("ole@acme.dk", at=T1) is None
    with pytest.raises(InviteError):
        mark_bounced("not-an-email")


def test_the_first_unsubscribe_is_kept(app):
    contact = _contact()
    unsubscribe(contact, at=T1)
    db.session.commit()
    unsubscribe(contact, at=T2)
    unsubscribe(contact)
    assert reloaded(contact).unsubscribed_at == T1
    assert reloaded(contact).unreachable_reason == "unsubscribed"


# --- every entry point, one contact --------------------------------------------------------


@pytest.fixture
def api_key(app) -> str:
    from loyalty.api.keys import create_key

    _, key = create_key("tests")
    db.session.commit()
    return key


def test_import_cli_and_api_end_in_one_contact(client, runner, api_key, tmp_path):
    invited = runner.invoke(
        args=["invite", "--email", "Mette@Acme.dk", "--name", "Mette Hansen",
              "--account", "Acme A/S", "--segment", "b2b", "--language", "da"]
    )  # fmt: skip
    assert invited.exit_code == 0, invited.output
    event = {
        "external_id": "order-1",
        "kind": "delivery",
        "occurred_at": utcnow().isoformat(),
        "account": {"external_ref": "C-17", "name": "Acme A/S", "segment": "b2b"},
        "contact": {"email": "mette@acme.dk", "name": "Mette Hansen", "language": "da"},
    }
    posted = client.post(
        "/api/v1/events", json=event, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert posted.status_code == 201, posted.json
    path = tmp_path / "contacts.csv"
    path.write_text("email,name,language,account_ref\nMETTE@acme.DK,Mette H.,en,C-17\n")
    imported = runner.invoke(args=["import", "contacts", str(path)])
    assert imported.exit_code == 0, imported.output
    db.session.expire_all()
    (contact,) = db.session.scalars(sa.select(Contact)).all()
    assert (contact.email, contact.name, contact.language) == ("mette@acme.dk", "Mette H.", "en")
    (acme,) = db.session.scalars(sa.select(Account)).all()
    assert (acme.name, acme.external_ref) == ("Acme A/S", "C-17")
