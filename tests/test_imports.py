"""CSV imports: all rows or none, every bad row reported with its line, re-runs change
nothing, events scheduled by the same rules as the API, history scored for sentiment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from loyalty.db import db
from loyalty.models import Account, Answer, Contact, Event, Invitation, Response, utcnow


@pytest.fixture
def csv_file(tmp_path: Path):
    counter = iter(range(1000))

    def write(text: str, encoding: str = "utf-8") -> Path:
        path = tmp_path / f"file{next(counter)}.csv"
        path.write_bytes(text.encode(encoding))
        return path

    return write


def run(runner, kind: str, path: Path, *extra: str):
    return runner.invoke(args=["import", kind, str(path), *extra])


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


ACCOUNTS = """external_ref,name,segment,annual_value
C-1,Acme A/S,b2b,125000.50
C-2,Jensen Familie,b2c,
C-3,"Nordic ""Tools"" ApS",B2B,99
"""


def test_accounts_import_and_a_rerun_changes_nothing(runner, csv_file):
    path = csv_file(ACCOUNTS)
    first = run(runner, "accounts", path)
    assert first.exit_code == 0, first.output
    assert "3 created" in first.output and "Importing" in first.output
    names = db.session.scalars(sa.select(Account.name).order_by(Account.external_ref)).all()
    assert names == ["Acme A/S", "Jensen Familie", 'Nordic "Tools" ApS']
    again = run(runner, "accounts", path)
    assert again.exit_code == 0 and "3 unchanged" in again.output
    renamed = run(runner, "accounts", csv_file(ACCOUNTS.replace("Acme A/S", "Acme Group")))
    assert "1 updated" in renamed.output and "2 unchanged" in renamed.output
    assert count(Account) == 3


def test_semicolons_and_a_byte_order_mark_are_fine(runner, csv_file):
    path = csv_file("\ufeffexternal_ref;name;segment\nC-1;Acme A/S;b2b\n")
    assert run(runner, "accounts", path).exit_code == 0
    assert db.session.scalar(sa.select(Account.name)) == "Acme A/S"


def test_bad_rows_are_all_reported_by_line_and_nothing_is_imported(runner, csv_file):
    path = csv_file(
        "external_ref,name,segment,annual_value\n"
        "C-1,Acme A/S,b2b,1000\n"
        "C-2,,b2b,\n"
        'C-3,"Two\nLines",b2c,\n'
        "C-4,Fine,b2g,\n"
        "C-5,Fine too,b2c,lots\n"
        "C-6,Short,b2c\n"
    )
    result = run(runner, "accounts", path)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith(str(path))]
    assert errors == [
        f"{path}: line 3, name: must not be empty",
        f"{path}: line 4, name: must not contain line breaks or control characters",
        f"{path}: line 6, segment: must be one of b2b, b2c",
        f"{path}: line 7, annual_value: 'lots' is not a number",
        f"{path}: line 8: 3 cells; the header has 4",
    ]
    assert "5 problem(s); nothing was imported." in result.output
    assert count(Account) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("external_ref,name\nC-1,Acme\n", "segment: column is missing"),
        ("external_ref,name,segment,colour\n", "colour: unknown column"),
        ("", "the file is empty"),
    ],
)
def test_a_bad_header_is_explained(runner, csv_file, text, message):
    result = run(runner, "accounts", csv_file(text))
    assert result.exit_code == 1 and message in result.output


def test_a_file_that_is_not_utf8_is_refused(runner, csv_file):
    result = run(runner, "accounts", csv_file(ACCOUNTS.replace("Acme", "Åcme"), "latin-1"))
    assert result.exit_code == 1 and "not UTF-8" in result.output
    assert count(Account) == 0


def test_contacts_need_their_account(runner, csv_file):
    run(runner, "accounts", csv_file(ACCOUNTS))
    contacts = "email,name,language,account_ref,account\n"
    contacts += "mette@acme.example.com,Mette Hansen,da,C-1,\n"
    contacts += "ole@jensen.example.com,Ole Jensen,DA,,Jensen Familie\n"
    assert run(runner, "contacts", csv_file(contacts)).exit_code == 0
    by_email = {c.email: c.account.name for c in db.session.scalars(sa.select(Contact))}
    assert by_email == {
        "mette@acme.example.com": "Acme A/S",
        "ole@jensen.example.com": "Jensen Familie",
    }
    missing = contacts + "x@example.com,X,en,C-404,\n"
    result = run(runner, "contacts", csv_file(missing))
    assert result.exit_code == 1 and "line 4, account_ref: no account 'C-404'" in result.output
    bad = run(runner, "contacts", csv_file(contacts + "not-an-email,X,en,C-1,\n"))
    assert "line 4, email:" in bad.output


def test_an_address_in_other_case_is_the_same_contact(runner, csv_file):
    run(runner, "accounts", csv_file(ACCOUNTS))
    contacts = "email,name,language,account_ref,account\nMette@Acme.example.com,Mette,da,C-1,\n"
    assert run(runner, "contacts", csv_file(contacts)).exit_code == 0
    history = RESPONSES.splitlines()[0] + "\nAcme A/S,METTE@acme.example.com,2025-03-01,3,,,,da,\n"
    assert run(runner, "responses", csv_file(history)).exit_code == 0
    (contact,) = db.session.scalars(sa.select(Contact)).all()
    assert contact.email == "mette@acme.example.com"
    assert db.session.scalar(sa.select(Response.contact_id)) == contact.id


def _events(rows: list[str]) -> str:
    header = "external_id,kind,occurred_at,account_ref,account_name,segment,contact_email,"
    header += "contact_name,language,amount,product\n"
    return header + "".join(row + "\n" for row in rows)


def _when(days: float) -> str:
    return (utcnow() + dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def test_events_are_scheduled_by_the_rules_oldest_first(runner, csv_file):
    path = csv_file(
        _events(
            [
                # listed newest first: the import applies them in the order they happened
                f"e3,delivery,{_when(-1)},C-1,Acme A/S,b2b,c@acme.example.com,C,da,,",
                f"e2,delivery,{_when(-2)},C-1,Acme A/S,b2b,b@acme.example.com,B,da,,",
                f"e1,sale,{_when(-3)},C-1,Acme A/S,b2b,a@acme.example.com,A,en,1499.5,Desk",
                f"e0,sale,{_when(-90)},C-1,Acme A/S,b2b,a@acme.example.com,A,en,,",
            ]
        )
    )
    result = run(runner, "events", path)
    assert result.exit_code == 0, result.output
    assert "4 events created" in result.output
    outcome = dict(
        db.session.execute(
            sa.select(Event.external_id, Invitation.skip_reason)
            .join(Invitation, Invitation.event_id == Event.id)
        ).all()
    )  # fmt: skip
    assert outcome == {
        "e0": "stale_event",
        "e1": None,
        "e2": None,
        "e3": "throttled_account",
    }
    again = run(runner, "events", path)
    assert "4 events already there" in again.output
    assert count(Invitation) == 4 and count(Event) == 4
    assert str(db.session.scalar(sa.select(Event.amount).where(Event.external_id == "e1"))) == (
        "1499.50"
    )


def test_bad_events_name_the_csv_column(runner, csv_file):
    path = csv_file(
        _events(
            [
                f"e1,delivery,{_when(-1)},C-1,Acme A/S,b2b,a@acme.example.com,A,da,,",
                f"e2,delivery,{_when(-1)},C-1,Acme A/S,b2b,not-an-email,B,da,,",
                f'e3,delivery,{_when(-1)},C-1,Acme A/S,b2b,c@acme.example.com,"C\rD",da,,',
                f"e4,refund,{_when(-1)},C-1,Acme A/S,b2b,d@acme.example.com,D,da,,",
                "e5,sale,someday,C-1,Acme A/S,b2b,e@acme.example.com,E,da,,",
                f"e6,sale,{_when(-1)},C-1,Acme A/S,b2b,f@acme.example.com,F,da,-5,",
            ]
        )
    )
    result = run(runner, "events", path)
    assert result.exit_code == 1
    assert "line 3, contact_email: is not a valid email address" in result.output
    assert "line 4, contact_name: must have visible text and no line breaks" in result.output
    # the quoted CR made that row two lines long, as an editor shows it
    assert "line 6, kind: must be one of sale, delivery" in result.output
    assert "line 7, occurred_at: 'someday' is not a date and time" in result.output
    assert "line 8, amount: must be at least 0" in result.output
    assert count(Event) == 0 and count(Account) == 0


def test_a_conflict_found_while_writing_leaves_nothing_behind(runner, csv_file):
    path = csv_file(
        _events(
            [
                f"e1,delivery,{_when(-3)},C-1,Acme A/S,b2b,a@acme.example.com,A,da,,",
                f"e2,delivery,{_when(-2)},C-2,Acme A/S,b2b,b@acme.example.com,B,da,,",
            ]
        )
    )
    result = run(runner, "events", path)
    assert result.exit_code == 1
    assert "line 3, account_name: 'Acme A/S' is the name of another account" in result.output
    assert count(Event) == 0 and count(Account) == 0 and count(Invitation) == 0


RESPONSES = """account,contact_email,submitted_at,nps,csat,ces,comment,language,segment
Acme A/S,mette@acme.example.com,2025-03-01T10:00:00+01:00,3,2,,\
"Terrible support, nobody answers the phone.",en,b2b
Acme A/S,ole@acme.example.com,2025-03-02,10,5,7,Rigtig god service og hurtig levering,da,
Jensen Familie,jens@example.com,2025-04-01 08:00,8,,,,da,b2c
"""


def test_history_from_another_tool_is_imported_once_and_scored(runner, csv_file):
    path = csv_file(RESPONSES)
    result = run(runner, "responses", path)
    assert result.exit_code == 0, result.output
    assert "3 created" in result.output
    responses = db.session.scalars(sa.select(Response).order_by(Response.submitted_at)).all()
    assert [(r.nps, r.source, r.survey, r.survey_version) for r in responses] == [
        (3, "import", "post-sale", 0),
        (10, "import", "post-sale", 0),
        (8, "import", "post-sale", 0),
    ]
    assert responses[0].submitted_at == dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert responses[1].submitted_at == dt.datetime(2025, 3, 2, tzinfo=dt.UTC)  # a date: UTC
    assert responses[0].invitation_id is None and responses[0].import_key
    comments = {a.text: a for a in db.session.scalars(sa.select(Answer))}
    negative = comments["Terrible support, nobody answers the phone."]
    assert negative.question == "reason" and negative.sentiment == "negative"
    assert negative.scorer_version is not None
    assert comments["Rigtig god service og hurtig levering"].sentiment == "positive"
    assert db.session.scalar(sa.select(Account.segment).where(Account.name == "Jensen Familie"))
    again = run(runner, "responses", path)
    assert "3 unchanged" in again.output and count(Response) == 3 and count(Answer) == 2


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("Acme A/S,a@acme.example.com,2025-03-01,11,,,,en,b2b", "line 2, nps: must be a whole"),
        ("Acme A/S,a@acme.example.com,2025-03-01,7.5,,,,en,b2b", "line 2, nps: '7.5' is not a"),
        ("Acme A/S,a@acme.example.com,2025-03-01,,0,,,en,b2b", "line 2, csat: must be a whole"),
        ("Acme A/S,a@acme.example.com,2025-03-01,,,,,en,b2b", "line 2: no score and no comment"),
        ("Acme A/S,a@acme.example.com,March,5,,,,en,b2b", "line 2, submitted_at:"),
        ("Acme A/S,a@acme.example.com,2999-01-01,5,,,,en,b2b", "must not be in the future"),
        ("Acme A/S,nope,2025-03-01,5,,,,en,b2b", "line 2, contact_email:"),
        ("Acme A/S,a@acme.example.com,2025-03-01,5,,,,sv,b2b", "line 2, language: must be one"),
        ("New Co,a@acme.example.com,2025-03-01,5,,,,en,", "line 2, segment: no account 'New Co'"),
    ],
)
def test_bad_history_rows(runner, csv_file, row, message):
    header = RESPONSES.splitlines()[0]
    result = run(runner, "responses", csv_file(f"{header}\n{row}\n"))
    assert result.exit_code == 1 and message in result.output, result.output
    assert count(Response) == 0 and count(Account) == 0


def test_history_options_name_the_survey_and_question(runner, csv_file):
    path = csv_file(RESPONSES)
    bad = run(runner, "responses", path, "--survey", "nope")
    assert bad.exit_code == 2 and "unknown survey 'nope'" in bad.output
    bad = run(runner, "responses", path, "--comment-question", "nps")
    assert bad.exit_code == 2 and "must be one of reason, improve" in bad.output
    good = run(runner, "responses", path, "--comment-question", "improve")
    assert good.exit_code == 0
    assert set(db.session.scalars(sa.select(Answer.question))) == {"improve"}


def test_imported_history_throttles_new_events(runner, csv_file, app):
    from loyalty.outreach.events import event_from_json, record_event

    recent = (utcnow() - dt.timedelta(days=5)).isoformat()
    row = f"Acme A/S,mette@acme.example.com,{recent},9,,,,da,b2b"
    assert run(runner, "responses", csv_file(RESPONSES.splitlines()[0] + "\n" + row)).exit_code == 0
    event = {
        "external_id": "e1",
        "kind": "renewal",
        "occurred_at": utcnow().isoformat(),
        "account": {"external_ref": "C-1", "name": "Acme A/S", "segment": "b2b"},
        "contact": {"email": "mette@acme.example.com", "name": "Mette", "language": "da"},
    }
    recorded = record_event(event_from_json(event))
    assert [i.skip_reason for i in recorded.invitations] == ["throttled_contact"]


def test_accounts_carry_their_owner_and_churn(runner, csv_file):
    from loyalty.auth import create_user

    create_user("Lead@Example.com", "support", "correct horse battery")
    db.session.commit()
    path = csv_file(
        "external_ref,name,segment,owner_email,churned_at\n"
        "C-1,Acme A/S,b2b,LEAD@example.com,\n"
        "C-2,Gone ApS,b2b,,2026-03-01\n"
    )
    result = run(runner, "accounts", path)
    assert result.exit_code == 0, result.output
    acme, gone = db.session.scalars(sa.select(Account).order_by(Account.external_ref)).all()
    assert acme.owner is not None and acme.owner.email == "lead@example.com"
    assert acme.churned_at is None and gone.owner is None
    assert gone.churned_at == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    # An empty churned_at brings a churned customer back.
    back = run(
        runner, "accounts", csv_file("external_ref,name,segment,churned_at\nC-2,Gone ApS,b2b,\n")
    )
    assert back.exit_code == 0, back.output
    db.session.expire_all()
    assert db.session.get(Account, gone.id).churned_at is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("C-1,Acme A/S,b2b,nobody@example.com,", "owner_email: no active staff member"),
        ("C-1,Acme A/S,b2b,not-an-address,", "line 2, owner_email:"),
        ("C-1,Acme A/S,b2b,,2999-01-01", "churned_at: must not be in the future"),
        ("C-1,Acme A/S,b2b,,someday", "line 2, churned_at:"),
    ],
)
def test_bad_owner_or_churn_is_a_row_error(runner, csv_file, row, message):
    path = csv_file(f"external_ref,name,segment,owner_email,churned_at\n{row}\n")
    result = run(runner, "accounts", path)
    assert result.exit_code == 1 and message in result.output
    assert count(Account) == 0


def test_contacts_say_who_decides(runner, csv_file):
    run(runner, "accounts", csv_file("external_ref,name,segment\nC-1,Acme A/S,b2b\n"))
    path = csv_file(
        "email,name,language,account_ref,decision_maker\n"
        "boss@acme.dk,Bo Boss,da,C-1,true\nuser@acme.dk,Ulla User,da,C-1,\n"
    )
    assert run(runner, "contacts", path).exit_code == 0
    flags = dict(db.session.execute(sa.select(Contact.email, Contact.is_decision_maker)).all())
    assert flags == {"boss@acme.dk": True, "user@acme.dk": False}
    bad = run(runner, "contacts", csv_file(
        "email,name,language,account_ref,decision_maker\nboss@acme.dk,Bo Boss,da,C-1,maybe\n"
    ))  # fmt: skip
    assert bad.exit_code == 1 and "decision_maker: must be true or false" in bad.output


def test_the_sample_files_of_every_kind_import_cleanly_and_once(runner):
    """docs/examples/ has a file per kind that a newcomer can import as the README says."""
    from loyalty.outreach.imports import make_kind

    examples = Path(__file__).resolve().parents[1] / "docs" / "examples"
    kinds = ("accounts", "contacts", "events", "responses")  # the order the README runs them
    for kind in kinds:
        make_kind(kind)  # a kind the importer knows
        result = runner.invoke(args=["import", kind, str(examples / f"{kind}.csv")])
        assert result.exit_code == 0 and "created" in result.output, result.output
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == 4
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 5
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 4
    assert db.session.scalar(sa.select(sa.func.count(Response.id))) == 4
    again = runner.invoke(args=["import", "events", str(examples / "events.csv")])
    assert "4 events already there" in again.output
    readme = (examples.parents[1] / "README.md").read_text(encoding="utf-8")
    for kind in kinds:
        assert f"flask --app loyalty import {kind} docs/examples/{kind}.csv" in readme
