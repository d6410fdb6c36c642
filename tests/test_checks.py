"""The input checks every entry point shares: one-line and free text, money to the cent
(half up), spreadsheet-safe cells; and the CSV import and the API rounding alike."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from loyalty import checks
from loyalty.checks import CheckError
from loyalty.db import db
from loyalty.models import Account, utcnow

AMOUNT = "must be an amount, like 1250.50"
CONTROL = "must not contain line breaks or control characters"


@pytest.mark.parametrize(
    ("value", "one_line", "free_text"),
    [
        ("Acme A/S", True, True),
        ("", True, True),
        ("Ærø Øl & Co. — “quoted”", True, True),
        ("line\r\nbreak", False, True),
        ("line\nbreak", False, True),
        ("tab\there", False, True),
        ("lone\rCR", False, False),  # only CR LF counts as a line break
        ("nul\x00byte", False, False),
        ("escape\x1b[31m", False, False),
        ("bell\x07", False, False),
        ("vertical\x0btab", False, False),
        ("form\x0cfeed", False, False),
        ("unit\x1fseparator", False, False),
        ("delete\x7f", False, False),
        # only C0 and DEL are refused; C1 and Unicode separators are not control to us
        ("next\x85line", True, True),
        ("line\u2028separator", True, True),
    ],
)
def test_one_line_and_free_text(value, one_line, free_text):
    assert checks.is_one_line(value) is one_line
    assert checks.is_free_text(value) is free_text


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        ("  Acme A/S  ", {}, "Acme A/S"),
        ("\tAcme\n", {}, "Acme"),  # surrounding whitespace goes before the check
        ("x" * 10, {"max_length": 10}, "x" * 10),
        (" " + "x" * 10 + " ", {"max_length": 10}, "x" * 10),
        ("", {"required": False}, ""),
        (None, {"required": False}, ""),
        ("   ", {"required": False}, ""),
    ],
)
def test_one_line_keeps(value, kwargs, expected):
    assert checks.one_line(value, **{"max_length": 200, **kwargs}) == expected


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("", {}, "must not be empty"),
        (None, {}, "must not be empty"),
        ("  \t ", {}, "must not be empty"),
        ("Mette\r\nBcc: evil@example.com", {}, CONTROL),
        ("a\tb", {}, CONTROL),
        ("a\x00b", {"required": False}, CONTROL),
        ("x" * 11, {"max_length": 10}, "at most 10 characters"),
        ("x" * 201, {}, "at most 200 characters"),
    ],
)
def test_one_line_refuses(value, kwargs, message):
    with pytest.raises(CheckError) as caught:
        checks.one_line(value, **{"max_length": 200, **kwargs})
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.125, "0.13"),  # half a cent rounds up, not to even
        (0.135, "0.14"),
        (0.145, "0.15"),
        (2.5, "2.50"),
        (0, "0.00"),
        (10, "10.00"),
        (125000.5, "125000.50"),
        ("0.125", "0.13"),
        (" 12.345 ", "12.35"),
        ("1e3", "1000.00"),
        (Decimal("1.005"), "1.01"),
        (Decimal("0.124"), "0.12"),
        (Decimal("99"), "99.00"),
        ("999999999999.99", "999999999999.99"),
        ("999999999999.994", "999999999999.99"),
    ],
)
def test_money(value, expected):
    amount = checks.money(value)
    assert isinstance(amount, Decimal)
    assert str(amount) == expected


def test_no_money_is_none():
    assert checks.money(None) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, AMOUNT),
        (False, AMOUNT),
        (float("nan"), AMOUNT),
        (float("inf"), AMOUNT),
        ("NaN", AMOUNT),
        ("Infinity", AMOUNT),
        ("-Infinity", AMOUNT),
        ("lots", AMOUNT),
        ("", AMOUNT),
        ("1,5", AMOUNT),
        (b"12", AMOUNT),
        ([12], AMOUNT),
        (-1, "must not be negative"),
        ("-0.01", "must not be negative"),
        (Decimal("-5"), "must not be negative"),
        ("999999999999.995", "at most 999,999,999,999.99"),
        (10**12, "at most 999,999,999,999.99"),
    ],
)
def test_money_refuses(value, message):
    with pytest.raises(CheckError) as caught:
        checks.money(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+45 12 34 56 78", "'+45 12 34 56 78"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("Acme A/S", "Acme A/S"),
        (" =1", " =1"),
        ("a=b", "a=b"),
        ("", ""),
        (-1, -1),
        (Decimal("-1.50"), Decimal("-1.50")),
        (None, None),
    ],
)
def test_spreadsheet_safe(value, expected):
    assert checks.spreadsheet_safe(value) == expected


# --- the entry points agree ----------------------------------------------------------------


@pytest.fixture
def api_key(app) -> str:
    from loyalty.api.keys import create_key

    _, key = create_key("tests")
    db.session.commit()
    return key


def _event(annual_value) -> dict:
    return {
        "external_id": "order-1",
        "kind": "delivery",
        "occurred_at": utcnow().isoformat(),
        "account": {
            "external_ref": "A-1",
            "name": "Acme A/S",
            "segment": "b2b",
            "annual_value": annual_value,
        },
        "contact": {"email": "mette@acme.example.com", "name": "Mette", "language": "da"},
    }


def _stored_value() -> Decimal:
    db.session.expire_all()
    (value,) = db.session.scalars(sa.select(Account.annual_value)).all()
    return value


def _import_accounts(runner, tmp_path, annual_value: str):
    path = tmp_path / "accounts.csv"
    path.write_text(f"external_ref,name,segment,annual_value\nA-1,Acme A/S,b2b,{annual_value}\n")
    return runner.invoke(args=["import", "accounts", str(path)])


@pytest.mark.parametrize(
    ("given", "stored"), [("0.125", "0.13"), ("0.135", "0.14"), ("2.5", "2.50")]
)
def test_the_accounts_import_rounds_half_up(runner, tmp_path, given, stored):
    result = _import_accounts(runner, tmp_path, given)
    assert result.exit_code == 0, result.output
    assert _stored_value() == Decimal(stored)


@pytest.mark.parametrize(("given", "stored"), [(0.125, "0.13"), (0.135, "0.14"), (2.5, "2.50")])
def test_the_events_api_rounds_half_up(client, api_key, given, stored):
    reply = client.post(
        "/api/v1/events", json=_event(given), headers={"Authorization": f"Bearer {api_key}"}
    )
    assert reply.status_code == 201, reply.json
    assert _stored_value() == Decimal(stored)


def test_import_and_api_store_the_same_amount(app, runner, tmp_path, client, api_key):
    assert _import_accounts(runner, tmp_path, "0.125").exit_code == 0
    imported = _stored_value()
    db.session.execute(sa.update(Account).values(annual_value=Decimal(0)))
    db.session.commit()
    headers = {"Authorization": f"Bearer {api_key}"}
    assert client.post("/api/v1/events", json=_event(0.125), headers=headers).status_code == 201
    assert _stored_value() == imported == Decimal("0.13")


def test_an_import_amount_that_rounds_past_the_maximum_is_a_row_error(runner, tmp_path):
    result = _import_accounts(runner, tmp_path, "999999999999.995")
    assert result.exit_code == 1
    assert "line 2, annual_value:" in result.output
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == 0


@pytest.mark.parametrize(
    ("text", "length"),
    [("abc", 3), ("\U0001f600", 2), ("æøå", 3), ("a\r\nb", 3), ("a\nb", 3), ("👍🏽", 4)],
)
def test_typed_length_counts_as_a_browsers_maxlength(text, length):
    assert checks.typed_length(text) == length
