"""The audit log (issue 14): each kind of event recorded with who and from where, never a
secret or a customer's words; append-only; ``/admin/audit`` and ``flask export audit``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa
from conftest import csrf_from
from test_accounts_views import warning

from loyalty.audit import log as audit_log
from loyalty.db import db
from loyalty.models import AuditEvent, Case

PASSWORD = "correct horse battery"
COMMENT = "Elendig service, vi opsiger aftalen"


def events(action: str | None = None) -> list[AuditEvent]:
    db.session.expire_all()
    q = sa.select(AuditEvent).order_by(AuditEvent.id)
    if action:
        q = q.where(AuditEvent.action == action)
    return list(db.session.scalars(q))


def everything_logged() -> str:
    """Every audit row as text, for checks that something is never in it."""
    return "\n".join(
        " ".join(str(getattr(e, c)) for c in ("actor", "ip", "action", "target", "detail"))
        for e in events()
    )


def sign_in(client, email: str, password: str):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_sign_ins_and_sign_outs_are_recorded_with_the_address(client, auth):
    auth.login("support", "lead@example.com")  # creates the user, signs in
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/triage").text)})
    assert sign_in(client, "lead@example.com", "guess-Tr0ub4dor-1").status_code == 401
    assert sign_in(client, "nobody@example.com", "guess-Tr0ub4dor-2").status_code == 401
    (ok,) = events("sign_in")
    assert ok.actor == "lead@example.com" and ok.ip == "127.0.0.1" and ok.source == "web"
    assert json.loads(ok.detail or "{}") == {"role": "support"}
    (out,) = events("sign_out")
    assert out.actor_id == ok.actor_id
    known, unknown = events("sign_in.failed")
    assert known.actor_id == ok.actor_id and known.ip == "127.0.0.1"
    assert unknown.actor_id is None and unknown.actor == "anonymous"
    assert json.loads(unknown.detail or "{}")["reason"] == "unknown address"
    logged = everything_logged()
    assert "nobody@example.com" not in logged  # an unknown address is someone's data
    assert "guess-Tr0ub4dor" not in logged and PASSWORD not in logged


def test_staff_actions_on_cases_and_warnings_are_recorded(app, client, auth, stored_answer):
    account = stored_answer("Acme A/S", nps=1, reason=COMMENT)
    case = db.session.scalars(sa.select(Case)).one()
    auth.login("support", "lead@example.com")
    token = csrf_from(client.get(f"/triage/{case.id}").text)
    note = client.post(f"/triage/{case.id}/note", data={"csrf_token": token, "body": "Ring <b>"})
    assert note.status_code == 303
    done = client.post(
        f"/triage/{case.id}/status", data={"csrf_token": token, "status": "waiting_on_customer"}
    )
    assert done.status_code == 303, done.text
    w = warning(account)
    acted = client.post(
        f"/accounts/{account.id}/warnings/{w.id}",
        data={"csrf_token": token, "status": "acknowledged", "note": "Calling them today"},
    )
    assert acted.status_code == 303
    (noted,) = events("case.note")
    assert noted.target == f"case:{case.id}" and noted.actor == "lead@example.com"
    assert noted.detail is None  # the note's text is not repeated here
    (status,) = events("case.status")
    assert json.loads(status.detail or "{}") == {"status": "waiting_on_customer"}
    (ack,) = events("warning.acknowledged")
    assert ack.target == f"warning:{w.id}"
    logged = everything_logged()
    assert COMMENT not in logged and "Ring" not in logged and "Calling them" not in logged
    # A refused action leaves no record (it is in the action's own transaction).
    client.post(f"/triage/{case.id}/status", data={"csrf_token": token, "status": "bogus"})
    assert len(events("case.status")) == 1


def test_exports_are_recorded_with_who_ran_them(app, runner, stored_answer):
    stored_answer("Acme A/S", nps=2, reason=COMMENT)
    out = runner.invoke(args=["export", "responses"])
    assert out.exit_code == 0 and COMMENT in out.output
    assert runner.invoke(args=["export", "cases", "--from", "2026-01-01"]).exit_code == 0
    assert runner.invoke(args=["export", "warnings"]).exit_code == 0
    assert runner.invoke(args=["export", "health"]).exit_code == 0
    (responses,) = events("export.responses")
    assert responses.actor.startswith("cli:") and responses.source == "cli"
    assert responses.ip is None
    (cases,) = events("export.cases")
    assert json.loads(cases.detail or "{}") == {"from": "2026-01-01"}
    assert len(events("export.warnings")) == len(events("export.health")) == 1
    assert COMMENT not in everything_logged()


def test_user_key_and_webhook_changes_by_command_are_recorded(app, runner):
    made = runner.invoke(
        args=["user", "create", "--email", "ann@example.com", "--role", "admin"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert made.exit_code == 0, made.output
    key_out = runner.invoke(args=["api-key", "create", "--name", "webshop"])
    assert key_out.exit_code == 0
    key = key_out.stdout.strip().splitlines()[0]
    (created,) = events("api_key.create")
    assert runner.invoke(args=["api-key", "revoke", created.target.split(":")[1]]).exit_code == 0
    hook = runner.invoke(args=["webhook", "add", "https://crm.example.com/hooks"])
    assert hook.exit_code == 0, hook.output
    secret = hook.output.rsplit(": ", 1)[1].strip()
    (added,) = events("webhook.add")
    assert runner.invoke(args=["webhook", "remove", added.target.split(":")[1]]).exit_code == 0

    (user,) = events("user.create")
    assert json.loads(user.detail or "{}") == {"role": "admin"} and user.actor.startswith("cli:")
    assert json.loads(created.detail or "{}") == {"name": "webshop"}
    assert len(events("api_key.revoke")) == len(events("webhook.remove")) == 1
    logged = everything_logged()
    assert PASSWORD not in logged and key not in logged and key[:12] not in logged
    assert secret not in logged


@pytest.mark.parametrize(
    "detail", [{"password": "x"}, {"api_token": "x"}, {"comment": "x"}, {"note": "two\nlines"}]
)
def test_secrets_and_customer_text_are_refused(app, detail):
    with pytest.raises(ValueError, match="audit detail"):
        audit_log.record("test.event", detail=detail)


def test_the_log_is_append_only(app):
    audit_log.record("test.event", detail={"n": 1})
    db.session.commit()
    (event,) = events("test.event")
    event.action = "test.changed"
    with pytest.raises(audit_log_error()):
        db.session.commit()
    db.session.rollback()
    with pytest.raises(audit_log_error()):
        db.session.delete(events("test.event")[0])
        db.session.commit()
    db.session.rollback()
    # Nor behind the ORM's back: the database's own trigger refuses.
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(sa.exc.DBAPIError), db.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert [e.action for e in events()] == ["test.event"]


def test_the_one_change_the_log_takes_is_forgetting_an_address(app):
    """Retention may forget an old event's client address; the triggers refuse any other
    change: the address with another column, or an address put back."""
    for action in ("test.forgotten", "test.kept"):
        db.session.add(
            AuditEvent(actor="ann@example.com", source="web", ip="10.0.0.9", action=action)
        )
    db.session.commit()
    forget = sa.update(AuditEvent).where(AuditEvent.action == "test.forgotten").values(ip=None)
    db.session.execute(forget)  # as retention does it
    db.session.commit()
    refused = (
        "UPDATE audit_events SET ip = '10.0.0.1' WHERE action = 'test.forgotten'",
        "UPDATE audit_events SET ip = NULL, actor = 'someone' WHERE action = 'test.kept'",
        "UPDATE audit_events SET ip = '10.0.0.1' WHERE action = 'test.kept'",
    )
    for statement in refused:
        with pytest.raises(sa.exc.DBAPIError), db.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert [(e.action, e.actor, e.ip) for e in events()] == [
        ("test.forgotten", "ann@example.com", None),
        ("test.kept", "ann@example.com", "10.0.0.9"),
    ]


def test_retention_forgets_old_client_addresses_only(app):
    import datetime as dt

    from loyalty.models import utcnow
    from loyalty.privacy import retention

    app.config["RETENTION_MONTHS"] = 12
    now = utcnow()
    for days, ip in ((400, "10.0.0.1"), (10, "10.0.0.2")):
        db.session.add(
            AuditEvent(actor="ann@example.com", source="web", ip=ip, action="sign_in",
                       at=now - dt.timedelta(days=days))
        )  # fmt: skip
    db.session.commit()
    assert retention.apply(now)["audit_addresses"] == 1
    db.session.expire_all()
    assert sorted((e.ip or "") for e in events("sign_in")) == ["", "10.0.0.2"]


def audit_log_error() -> type[Exception]:
    from loyalty.security_tables import AppendOnlyError

    return AppendOnlyError


def _seed(n: int, **fields) -> None:
    for i in range(n):
        db.session.add(
            AuditEvent(
                actor=fields.get("actor", "ann@example.com"),
                source="web",
                action=fields.get("action", "case.note"),
                target=f"case:{i}",
                at=fields.get("at", dt.datetime.now(dt.UTC)),
            )
        )
    db.session.commit()


def test_admin_audit_page_filters_escapes_and_pages(client, auth):
    _seed(55)
    _seed(2, actor="bob@example.com", action="export.responses")
    _seed(1, actor="old@example.com", at=dt.datetime.now(dt.UTC) - dt.timedelta(days=60))
    audit_log.record("api_key.create", detail={"name": "<script>alert(1)</script>"})
    db.session.commit()
    auth.login("admin")
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert page.text.count("data-event=") == audit_log.PAGE_SIZE
    assert 'rel="next"' in page.text and "old@example.com" not in page.text
    older = client.get(page.text.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&"))
    first_ids = set(page.text.split('data-event="')[1:])
    assert older.status_code == 200 and 'rel="next"' not in older.text
    # 55 + 2 + 1 key + 1 sign-in within the default 30 days; 50 on the first page
    assert older.text.count("data-event=") == 59 - audit_log.PAGE_SIZE
    assert not first_ids & set(older.text.split('data-event="')[1:])
    who = client.get("/admin/audit?who=bob@")
    assert who.text.count("data-event=") == 2
    what = client.get("/admin/audit?what=export")
    assert what.text.count("data-event=") == 2
    since = (dt.date.today() - dt.timedelta(days=90)).isoformat()
    when = client.get(f"/admin/audit?from={since}&who=old@")
    assert when.text.count("data-event=") == 1
    assert client.get("/admin/audit?from=yesterday").status_code == 400
    assert client.get("/admin/audit?before=x").status_code == 400


@pytest.mark.parametrize("role, status", [("support", 403), ("executive", 403), (None, 302)])
def test_only_admins_read_the_audit_log(client, auth, role, status):
    if role:
        auth.login(role)
    assert client.get("/admin/audit").status_code == status
    assert client.get("/admin/audit.csv").status_code == status


def test_audit_csv_from_the_page_and_the_command(app, client, auth, runner):
    _seed(3, actor="=cmd|' /C calc'!A0", action="case.note")
    auth.login("admin")
    download = client.get("/admin/audit.csv?what=case")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == audit_log.CSV_HEADER and len(rows) == 4
    assert all(r[2].startswith("'=") for r in rows[1:])  # spreadsheet-safe
    (web,) = events("export.audit")
    assert web.actor == "admin@example.com" and web.source == "web"
    out = runner.invoke(args=["export", "audit", "--what", "sign_in"])
    assert out.exit_code == 0, out.output
    rows = list(csv.reader(io.StringIO(out.output)))
    assert [r[6] for r in rows[1:]] == ["sign_in"]
    assert len(events("export.audit")) == 2
    bad = runner.invoke(args=["export", "audit", "--from", "nope"])
    assert bad.exit_code == 2
