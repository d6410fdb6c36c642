"""Invitation links: random, stored hashed, rebuildable only with the secret key."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from loyalty.accounts.services import Invitee, InviteError, validate
from loyalty.models import utcnow
from loyalty.outreach.invitations import find_open, hash_token, token_for


def test_tokens_are_long_random_and_only_hashes_are_stored(invite):
    first, token = invite()
    second, other = invite()
    assert token != other and len(token) == 43  # 256 bits, URL-safe base64
    assert first.token_hash == hash_token(token) and token not in first.token_hash
    assert len(first.token_nonce) >= 43  # 32 random bytes behind every token
    assert find_open(token) is first


def test_a_different_secret_cannot_rebuild_tokens(app, invite):
    invitation, token = invite()
    app.config["SECRET_KEY"] = "another-key"
    assert token_for(invitation) != token


def test_expired_and_malformed_tokens_open_nothing(invite):
    invitation, token = invite()
    assert find_open(token, now=invitation.expires_at + dt.timedelta(seconds=1)) is None
    assert find_open(token[:-1]) is None
    assert find_open(token + "=") is None


def test_invitation_expires_after_the_configured_days(app, invite):
    app.config["INVITATION_DAYS"] = 10
    due = utcnow()
    invitation, _ = invite(due_at=due)
    assert invitation.expires_at - due == dt.timedelta(days=10)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "nope"}, "email"),
        ({"name": " "}, "name"),
        ({"name": "A\nB"}, "name"),
        ({"account": "x" * 201}, "account"),
        ({"segment": "b2g"}, "segment"),
        ({"language": "sv"}, "language"),
    ],
)
def test_invitee_validation_names_the_field(changes, field):
    fields = dict(email="a@example.com", name="A", account="B", segment="b2c", language="da")
    with pytest.raises(InviteError, match=f"^{field}:"):
        validate(Invitee(**{**fields, **changes}))


# --- events and the scheduling rules, with the database ------------------------------------


def _event(n: int, *, kind="delivery", when=None, email=None, account="Acme A/S", ref="C-1",
           segment="b2b", **contact):  # fmt: skip
    from loyalty.outreach.events import event_from_json

    return event_from_json(
        {
            "external_id": f"ev-{n}",
            "kind": kind,
            "occurred_at": (when or utcnow()).isoformat(),
            "account": {"external_ref": ref, "name": account, "segment": segment},
            "contact": {
                "email": email or f"person{n}@acme.example.com",
                "name": contact.get("name", f"Person {n}"),
                "language": contact.get("language", "da"),
            },
        }
    )


def _record(data):
    """Record as if posted when it happened (for events "in the future", time has passed)."""
    from loyalty.db import db
    from loyalty.outreach.events import record_event

    recorded = record_event(data, now=max(utcnow(), data.occurred_at))
    db.session.commit()
    return recorded


def _outcome(recorded) -> list[tuple[str, str | None]]:
    return [(i.status, i.skip_reason) for i in recorded.invitations]


def test_an_event_is_recorded_once_per_external_id(app):
    first = _record(_event(1))
    again = _record(_event(1, kind="sale"))  # the first version wins
    assert first.created and not again.created
    assert again.event.id == first.event.id and again.event.kind == "delivery"
    assert [i.id for i in again.invitations] == [i.id for i in first.invitations]


def test_an_address_in_other_case_is_the_same_contact(app):
    first = _record(_event(1, email="Mette@Acme.example.com"))
    again = _record(_event(2, email="METTE@acme.example.com"))
    assert again.event.contact is first.event.contact
    assert first.event.contact.email == "mette@acme.example.com"
    assert _outcome(again) == [("skipped", "throttled_contact")]


def test_a_contact_is_surveyed_once_in_30_days(app):
    assert _outcome(_record(_event(1, email="a@acme.example.com"))) == [("scheduled", None)]
    soon = _record(_event(2, email="a@acme.example.com", when=utcnow() + dt.timedelta(days=20)))
    assert _outcome(soon) == [("skipped", "throttled_contact")]
    later = _record(_event(3, email="a@acme.example.com", when=utcnow() + dt.timedelta(days=31)))
    assert _outcome(later) == [("scheduled", None)]


def test_a_b2b_account_is_surveyed_through_two_contacts_a_week(app):
    outcomes = [_outcome(_record(_event(n))) for n in range(1, 5)]
    assert outcomes == [
        [("scheduled", None)],
        [("scheduled", None)],
        [("skipped", "throttled_account")],
        [("skipped", "throttled_account")],
    ]
    next_week = _record(_event(5, when=utcnow() + dt.timedelta(days=7)))
    assert _outcome(next_week) == [("scheduled", None)]


def test_the_account_limit_is_a_setting_and_b2c_has_none(app):
    app.config["ACCOUNT_THROTTLE_CONTACTS"] = 1
    assert _outcome(_record(_event(1))) == [("scheduled", None)]
    assert _outcome(_record(_event(2))) == [("skipped", "throttled_account")]
    family = [_record(_event(n, account="Family", ref="F-1", segment="b2c")) for n in (3, 4)]
    assert [_outcome(r) for r in family] == [[("scheduled", None)]] * 2


@pytest.mark.parametrize("state", ["unsubscribed_at", "bounced_at", "erased_at"])
def test_unreachable_contacts_are_never_scheduled(app, state):
    from loyalty.db import db

    first = _record(_event(1, email="gone@acme.example.com", name="Gone"))
    contact = first.event.contact
    setattr(contact, state, utcnow())
    db.session.commit()
    later = _record(_event(2, email="gone@acme.example.com", name="New Name",
                           when=utcnow() + dt.timedelta(days=40)))  # fmt: skip
    assert _outcome(later) == [("skipped", state.removesuffix("_at"))]
    if state == "erased_at":
        assert contact.name == "Gone"  # nothing personal is written back to an erased contact


def test_skipped_and_failed_invitations_do_not_count_as_surveyed(app):
    from loyalty.db import db

    first = _record(_event(1, email="a@acme.example.com"))
    first.invitations[0].status = "failed"
    db.session.commit()
    again = _record(_event(2, email="a@acme.example.com"))
    assert _outcome(again) == [("scheduled", None)]


def test_history_imported_from_another_tool_counts_as_surveyed(app):
    from loyalty.db import db
    from loyalty.models import Response

    first = _record(_event(1, email="a@acme.example.com", when=utcnow() - dt.timedelta(days=90)))
    contact = first.event.contact
    db.session.add(
        Response(source="import", import_key="k1", contact=contact, account=contact.account,
                 survey="post-sale", survey_version=0, language="da", nps=9,
                 submitted_at=utcnow() - dt.timedelta(days=10))
    )  # fmt: skip
    db.session.commit()
    assert _outcome(_record(_event(2, email="a@acme.example.com"))) == [
        ("skipped", "throttled_contact")
    ]


def test_an_old_event_is_recorded_but_surveys_nobody(app):
    stale = _record(_event(1, when=utcnow() - dt.timedelta(days=60)))
    assert _outcome(stale) == [("skipped", "stale_event")]


def test_a_late_event_is_due_now(app):
    late = _record(_event(1, when=utcnow() - dt.timedelta(days=10)))
    (invitation,) = late.invitations
    assert invitation.status == "scheduled"
    assert utcnow() - invitation.due_at < dt.timedelta(minutes=1)


def test_kinds_no_survey_listens_to_make_no_invitation(app):
    assert _record(_event(1, kind="support_ticket_closed")).invitations == []


def test_the_account_is_found_by_its_reference_and_renamed(app):
    from loyalty.db import db
    from loyalty.models import Account

    _record(_event(1, account="Acme", ref="C-1"))
    _record(_event(2, account="Acme Group A/S", ref="C-1"))
    assert db.session.scalars(sa.select(Account.name)).all() == ["Acme Group A/S"]
    with pytest.raises(InviteError, match="^account: 'Acme Group A/S' is the name of another"):
        _record(_event(3, account="Acme Group A/S", ref="C-2"))


def test_bounces_match_any_case_and_keep_the_first_date(app, runner):
    from loyalty.accounts.services import mark_bounced
    from loyalty.db import db

    contact = _record(_event(1, email="Mette@acme.example.com")).event.contact
    first = utcnow() - dt.timedelta(days=3)
    assert mark_bounced("METTE@Acme.Example.com", at=first) is contact
    mark_bounced("mette@acme.example.com")
    assert contact.bounced_at == first
    assert mark_bounced("nobody@acme.example.com") is None
    db.session.commit()
    result = runner.invoke(args=["contact", "bounce", "mette@acme.example.com"])
    assert result.exit_code == 0, result.output
    assert re.search(r"bounces since \d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)$", result.output.strip())
    result = runner.invoke(args=["contact", "bounce", "unknown@example.com"])
    assert result.exit_code == 2 and "no contact" in result.output
    result = runner.invoke(args=["contact", "bounce", "not an email"])
    assert result.exit_code == 2 and "email:" in result.output


def test_an_event_for_an_erased_contact_belongs_to_the_events_account(app):
    from loyalty.db import db

    first = _record(_event(1, email="gone@acme.example.com", account="Acme A/S", ref="C-1"))
    first.event.contact.erased_at = utcnow()
    db.session.commit()
    later = _record(_event(2, email="gone@acme.example.com", account="Other A/S", ref="C-2"))
    assert later.event.account.name == "Other A/S"
    assert later.event.contact.account.name == "Acme A/S"  # the erased contact is untouched
    assert _outcome(later) == [("skipped", "erased")]
