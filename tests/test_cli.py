"""The command line: users, invitations, dispatch and export, as an admin would run them."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from loyalty.db import db
from loyalty.models import Account, Contact, Invitation, User

INVITE = [
    "invite", "--email", "mette@acme.example.com", "--name", "Mette Hansen",
    "--account", "Acme A/S", "--segment", "b2b", "--language", "da", "--survey", "post-sale",
]  # fmt: skip


def test_user_create_with_password_option(runner):
    result = runner.invoke(
        args=["user", "create", "--email", "Lead@Example.com", "--role", "support",
              "--password", "s3cret-pass"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User))
    # Staff addresses are stored in lower case, so letter case cannot make two users.
    assert (user.email, user.role) == ("lead@example.com", "support")
    assert user.check_password("s3cret-pass") and "s3cret-pass" not in user.password_hash


def test_user_create_prompts_for_the_password(runner):
    result = runner.invoke(
        args=["user", "create", "--email", "a@example.com", "--role", "admin"],
        input="long-enough-1\nlong-enough-1\n",
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalar(sa.select(User)).check_password("long-enough-1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "not-an-email", "--role", "admin", "--password", "longenough"], "email"),
        (["--email", "a@example.com", "--role", "boss", "--password", "longenough"], "role"),
        (["--email", "a@example.com", "--role", "admin", "--password", "short"], "8 characters"),
    ],
)
def test_user_create_refuses_bad_input(runner, args, message):
    result = runner.invoke(args=["user", "create", *args])
    assert result.exit_code == 2 and message in result.output
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0


def test_invite_creates_account_contact_and_prints_a_working_link(runner, client):
    result = runner.invoke(args=INVITE)
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert url.startswith("http://survey.test/s/")
    contact = db.session.scalar(sa.select(Contact))
    assert (contact.name, contact.language, contact.account.segment) == (
        "Mette Hansen",
        "da",
        "b2b",
    )
    invitation = db.session.scalar(sa.select(Invitation))
    assert invitation.status == "scheduled"
    token = url.rsplit("/", 1)[1]
    assert token not in (invitation.token_hash, invitation.token_nonce)
    assert client.get(url.removeprefix("http://survey.test")).status_code == 200


def test_invite_again_updates_instead_of_duplicating(runner):
    runner.invoke(args=INVITE)
    result = runner.invoke(args=[*INVITE[:-6], "--segment", "b2c", "--language", "en"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == 1
    contact = db.session.scalar(sa.select(Contact))
    assert contact.language == "en" and contact.account.segment == "b2c"
    assert db.session.scalar(sa.select(sa.func.count(Invitation.id))) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--email", "mette@acme.example.com", "no-at-sign"), "email"),
        (("--name", "Mette Hansen", "Mette\r\nBcc: x@example.com"), "name: must not contain"),
        (("--survey", "post-sale", "nope"), "unknown survey"),
        (("--language", "da", "de"), "'de' is not one of"),
    ],
)
def test_invite_refuses_bad_input(runner, change, message):
    option, old, new = change
    args = list(INVITE)
    args[args.index(option) + 1] = new
    result = runner.invoke(args=args)
    assert result.exit_code == 2 and message in result.output
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0


def test_dispatch_sends_through_smtp(app, runner, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    runner.invoke(args=INVITE)
    result = runner.invoke(args=["dispatch"])
    assert "sent 1" in result.output
    assert "sent 0" in runner.invoke(args=["dispatch"]).output
    assert len(smtp_server.messages) == 1


def test_export_responses_is_spreadsheet_safe_csv(runner, client, invite):
    from conftest import csrf_from

    _, token = invite(language="en", account='=HYPERLINK("http://x")')
    html = client.get(f"/s/{token}").get_data(as_text=True)
    client.post(
        f"/s/{token}",
        data={"csrf_token": csrf_from(html), "nps": "2", "reason": "=1+2 terrible, bad",
              "improve": "@SUM(A1)"},
    )  # fmt: skip
    result = runner.invoke(args=["export", "responses"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    (row,) = rows
    assert row["account"] == '\'=HYPERLINK("http://x")'
    assert row["reason"] == "'=1+2 terrible, bad" and row["improve"] == "'@SUM(A1)"
    assert row["nps"] == "2" and row["survey"] == "post-sale" and row["survey_version"] == "1"
    assert row["reason_sentiment"] == "negative" and float(row["reason_polarity"]) < 0
    assert row["contact_email"].endswith("@example.com")
    assert row["reason_themes"] == row["improve_themes"] == ""  # about nothing in particular
    # ISO 8601 with the offset and whole seconds (no microseconds), as every CSV of ours
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", row["submitted_at"])


def test_export_responses_carries_each_comments_themes(runner, client, invite):
    from conftest import csrf_from

    _, token = invite(language="en")
    html = client.get(f"/s/{token}").get_data(as_text=True)
    client.post(
        f"/s/{token}",
        data={"csrf_token": csrf_from(html), "nps": "5",
              "reason": "the product is excellent but billing is a nightmare"},
    )  # fmt: skip
    (row,) = csv.DictReader(io.StringIO(runner.invoke(args=["export", "responses"]).output))
    cells = dict(cell.split(":", 1) for cell in row["reason_themes"].split())
    assert set(cells) == {"billing", "quality"}
    feeling, polarity = cells["billing"].split(":")
    assert feeling == "negative" and float(polarity) < 0
    assert cells["quality"].startswith("positive:")


def test_sentiment_score_reads_lines_and_writes_json(runner):
    import json

    result = runner.invoke(
        args=["sentiment", "score"], input="Terrible service, I want a refund\n\nMeget tilfreds\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["label"] for line in lines] == ["negative", "neutral", "positive"]
    assert "refund" in lines[0]["cues"] and lines[2]["language"] == "da"
    themes = {th["id"]: th for th in lines[0]["themes"]}
    assert set(themes) == {"support", "billing"} and themes["support"]["label"] == "negative"
    assert themes["billing"]["words"] == ["refund"] and lines[1]["themes"] == []


def test_sentiment_rescore_updates_only_outdated_answers_and_resumes(app, runner, invite):
    from loyalty import sentiment
    from loyalty.models import Answer
    from loyalty.survey.responses import rescore_outdated, save_response

    survey = app.extensions["loyalty.surveys"]["post-sale"]
    for n in range(5):
        invitation, _ = invite(language="en")
        save_response(invitation, survey, {"nps": n, "reason": f"bad {n}"}, complete=True)
    db.session.commit()
    db.session.execute(sa.update(Answer).values(scorer_version=0, sentiment="positive"))
    db.session.commit()
    # An interrupted run: one batch of two, then it stops.
    batches: list[int] = []

    class Stop(Exception):
        pass

    def stop_after_first(n: int) -> None:
        batches.append(n)
        raise Stop

    with pytest.raises(Stop):
        rescore_outdated(batch_size=2, progress=stop_after_first)
    versions = db.session.scalars(sa.select(Answer.scorer_version).order_by(Answer.id)).all()
    assert versions == [sentiment.SCORER_VERSION] * 2 + [0] * 3
    result = runner.invoke(args=["sentiment", "rescore", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "Rescored 3 answers" in result.output
    assert set(db.session.scalars(sa.select(Answer.sentiment))) == {"negative"}
    assert "All answers are scored" in runner.invoke(args=["sentiment", "rescore"]).output


def test_sentiment_rescore_fills_the_themes_of_old_answers(app, runner, invite):
    from loyalty import sentiment
    from loyalty.models import Answer
    from loyalty.survey.responses import save_response, stored_themes

    survey = app.extensions["loyalty.surveys"]["post-sale"]
    invitation, _ = invite(language="da")
    text = "Produktet er super, men faktureringen er elendig"
    save_response(invitation, survey, {"nps": 5, "reason": text}, complete=True)
    db.session.commit()
    # As an answer stored by scorer version 3 is: no themes.
    db.session.execute(sa.update(Answer).values(scorer_version=3, themes=None))
    db.session.commit()
    result = runner.invoke(args=["sentiment", "rescore"])
    assert result.exit_code == 0 and "Rescored 1 answers" in result.output
    answer = db.session.scalars(sa.select(Answer)).one()
    assert answer.scorer_version == sentiment.SCORER_VERSION > 3
    themes = {th["id"]: th["sentiment"] for th in stored_themes(answer)}
    assert themes == {"quality": "positive", "billing": "negative"}
    assert "All answers are scored" in runner.invoke(args=["sentiment", "rescore"]).output


def _command_paths(group, prefix=()):
    import click

    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name))


def test_every_command_is_in_the_readme(app):
    """A newcomer finds every command in the README, written as they would type it."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    ours = [path for path in _command_paths(app.cli) if not path.startswith("db ")]
    assert len(ours) > 20  # the walk found the groups' commands, not just the groups
    missing = [path for path in ours if f"flask --app loyalty {path}" not in readme]
    assert missing == []


def test_health_commands_and_exports(runner, stored_answer):
    import csv
    import io
    import json

    from loyalty.models import Account

    stored_answer('=HYPERLINK("http://evil") A/S', days_ago=200, nps=10)
    stored_answer('=HYPERLINK("http://evil") A/S', days_ago=5, nps=0, reason="We will cancel.")
    refreshed = runner.invoke(args=["health", "refresh"])
    assert refreshed.exit_code == 0 and "Scored 1 accounts." in refreshed.output
    rebuilt = runner.invoke(args=["health", "rebuild", "--from", "2026-01-01"])
    assert rebuilt.exit_code == 0 and "weekly snapshots" in rebuilt.output, rebuilt.output
    again = runner.invoke(args=["health", "rebuild", "--from", "2026-01-01"])
    assert again.output.splitlines()[-1] == rebuilt.output.splitlines()[-1]  # the same
    backtest = runner.invoke(args=["health", "backtest", "--json"])
    assert set(json.loads(backtest.output)) == {"health", "nps_below_zero", "latest_detractor"}
    text = runner.invoke(args=["health", "backtest"])
    assert "recall" in text.output and "precision" in text.output
    today = list(csv.DictReader(io.StringIO(runner.invoke(args=["export", "health"]).output)))
    assert len(today) == 1 and today[0]["account"].startswith("'=HYPERLINK")
    assert {"score", "band", "nps", "churn_cues"} <= set(today[0])
    assert today[0]["at"].endswith("+00:00") and "." not in today[0]["at"]  # whole seconds
    history = runner.invoke(args=["export", "health", "--history", "--from", "2026-01-01"])
    assert len(list(csv.DictReader(io.StringIO(history.output)))) > 10
    warned = runner.invoke(args=["export", "warnings", "--from", "2026-01-01"])
    rows = list(csv.DictReader(io.StringIO(warned.output)))
    assert rows and all(r["account"].startswith("'=") for r in rows)
    assert db.session.scalar(sa.select(Account.health_score)) is not None


@pytest.mark.parametrize(
    "args",
    [
        ["health", "rebuild", "--from", "someday"],
        ["health", "backtest", "--to", "2026-13-01"],
        ["export", "warnings", "--from", "2026-02-01", "--to", "2026-01-01"],
    ],
)
def test_health_commands_explain_a_bad_period(runner, args):
    result = runner.invoke(args=args)
    assert result.exit_code == 2 and "Error:" in result.output and "Traceback" not in result.output


def test_owner_decision_maker_and_churn_from_the_command_line(runner, stored_answer):
    from loyalty.auth import create_user
    from loyalty.models import Account, Contact

    create_user("owner@example.com", "support", "correct horse battery")
    account = stored_answer("Acme A/S", days_ago=30)
    db.session.commit()
    contact_email = db.session.scalar(sa.select(Contact.email))
    owned = runner.invoke(args=["account", "owner", "Acme A/S", "OWNER@example.com"])
    assert owned.exit_code == 0 and "owned by owner@example.com" in owned.output
    decides = runner.invoke(args=["contact", "decision-maker", contact_email, "true"])
    assert decides.exit_code == 0, decides.output
    churned = runner.invoke(args=["account", "churn", "Acme A/S", "2026-11-30"])
    assert churned.exit_code == 0, churned.output
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.owner.email == "owner@example.com" and account.churned_at is not None
    assert db.session.scalar(sa.select(Contact.is_decision_maker)) is True
    assert runner.invoke(args=["account", "reactivate", "Acme A/S"]).exit_code == 0
    db.session.expire_all()
    assert db.session.get(Account, account.id).churned_at is None
    for bad in (
        ["account", "owner", "Nope A/S", "owner@example.com"],
        ["account", "owner", "Acme A/S", "nobody@example.com"],
        ["account", "churn", "Acme A/S", "2999-01-01"],
        ["contact", "decision-maker", "nobody@example.com", "true"],
    ):
        result = runner.invoke(args=bad)
        assert result.exit_code == 2 and "Traceback" not in result.output, bad
