"""Demo data: realistic, in both languages, and a login and link that work."""

from __future__ import annotations

import sqlalchemy as sa

from loyalty.db import db
from loyalty.models import Account, Answer, Contact, Response


def test_seed_creates_a_year_of_scored_responses(runner):
    result = runner.invoke(args=["demo", "seed", "--accounts", "12"])
    assert result.exit_code == 0, result.output
    assert "Seeding demo accounts" in result.output
    segments = set(db.session.scalars(sa.select(Account.segment)))
    languages = set(db.session.scalars(sa.select(Contact.language)))
    assert segments == {"b2b", "b2c"} and languages == {"da", "en"}
    responses = db.session.scalars(sa.select(Response)).all()
    assert len(responses) > 20
    span = max(r.submitted_at for r in responses) - min(r.submitted_at for r in responses)
    assert span.days > 200
    labels = set(db.session.scalars(sa.select(Answer.sentiment)))
    assert {"negative", "positive"} <= labels


def test_seed_if_empty_leaves_existing_data_alone(runner):
    runner.invoke(args=["demo", "seed", "--accounts", "3"])
    before = db.session.scalar(sa.select(sa.func.count(Account.id)))
    result = runner.invoke(args=["demo", "seed", "--if-empty"])
    assert "skipped" in result.output
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == before


def test_info_prints_a_working_login_and_survey_link(runner, client):
    runner.invoke(args=["demo", "seed", "--accounts", "3"])
    result = runner.invoke(args=["demo", "info"])
    login_line = next(line for line in result.output.splitlines() if "Staff login" in line)
    email, password = login_line.split(": ", 1)[1].split(" / ")
    link = next(w for w in result.output.split() if "/s/" in w)
    assert client.get(link.removeprefix("http://survey.test")).status_code == 200
    from conftest import csrf_from

    token = csrf_from(client.get("/login").text)
    reply = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert reply.status_code == 302


def test_the_printed_password_keeps_working(runner, client):
    runner.invoke(args=["demo", "seed", "--accounts", "3"])

    def printed() -> str:
        output = runner.invoke(args=["demo", "info"]).output
        line = next(line for line in output.splitlines() if "Staff login" in line)
        return line.split(": ", 1)[1].split(" / ")[1]

    first = printed()
    assert printed() == first  # not reset by a second run


def test_a_person_made_admin_is_never_reset(runner):
    from loyalty.auth import create_user
    from loyalty.models import User

    create_user("admin@example.com", "admin", "my own long password")
    db.session.commit()
    output = runner.invoke(args=["demo", "info"]).output
    assert "not the demo's" in output
    user = db.session.scalar(sa.select(User).where(User.email == "admin@example.com"))
    assert user.check_password("my own long password")


def test_info_warns_when_no_triage_lead_is_set(app, runner):
    """make run (through demo info) says what to set before a case goes to nobody."""
    from loyalty.auth import create_user

    runner.invoke(args=["demo", "seed", "--accounts", "3"])
    app.config["CASE_DEFAULT_ASSIGNEE"] = ""
    result = runner.invoke(args=["demo", "info"])
    assert result.exit_code == 0
    assert "no triage lead is set" in result.stderr
    assert "LOYALTY_CASE_DEFAULT_ASSIGNEE" in result.stderr
    app.config["CASE_DEFAULT_ASSIGNEE"] = "Triage@Example.com"
    assert "triage@example.com is not an active" in runner.invoke(args=["demo", "info"]).stderr
    create_user("triage@example.com", "support", "correct horse battery")
    db.session.commit()
    assert "Warning" not in runner.invoke(args=["demo", "info"]).stderr
