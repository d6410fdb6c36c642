"""Invitation links: random, stored hashed, rebuildable only with the secret key."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.invitations import (
    Invitee,
    InviteError,
    find_open,
    hash_token,
    token_for,
    validate,
)
from loyalty.models import utcnow


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
