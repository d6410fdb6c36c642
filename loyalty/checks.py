"""Input checks every entry point shares: one-line text, free text, and money.

The CLI, the API, the CSV imports and the staff pages each word their own error for the
person in front of them, but they ask these functions whether the input is acceptable, so
a name the API refuses is refused by an import too, and an amount is rounded one way
everywhere. Pure: no Flask, no database.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

#: The C0 control characters and DEL, as a regular-expression class body. In a name or a
#: subject a CR or LF could forge an email header; none of them belongs in one-line text.
CONTROL = "\x00-\x1f\x7f"
_CONTROL = re.compile(f"[{CONTROL}]")
#: Free text (notes, replies, comments) may keep line breaks and tabs, nothing else.
_CONTROL_IN_FREE_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
#: Money is kept to the cent, half a cent rounding up (0.125 is 0.13), as people expect.
CENT = Decimal("0.01")
#: The largest amount stored (``Numeric(14, 2)``).
MAX_MONEY = Decimal("999999999999.99")


class CheckError(ValueError):
    """An input a check refused; the message is a short reason, without the field's name."""


def is_one_line(value: str) -> bool:
    """No line breaks, tabs or other control characters."""
    return _CONTROL.search(value) is None


def is_free_text(value: str) -> bool:
    """No control characters other than line breaks and tabs (CR LF counts as a break)."""
    return _CONTROL_IN_FREE_TEXT.search(value.replace("\r\n", "\n")) is None


def typed_length(text: str) -> int:
    """How long a browser's ``maxlength`` counts ``text``: in UTF-16 code units (an emoji
    is two), a line break as one, although the form sends it as CRLF. The survey counts
    comments this way so the box stops typing exactly where the server would refuse."""
    return len(text.replace("\r\n", "\n").encode("utf-16-le")) // 2


def one_line(value: str | None, *, max_length: int, required: bool = True) -> str:
    """``value`` stripped, or :class:`CheckError` saying why it cannot be one-line text."""
    text = (value or "").strip()
    if required and not text:
        raise CheckError("must not be empty")
    if not is_one_line(text):
        raise CheckError("must not contain line breaks or control characters")
    if len(text) > max_length:
        raise CheckError(f"at most {max_length} characters")
    return text


def money(value: object) -> Decimal | None:
    """An amount as stored: to the cent, half up; None stays None.

    Accepts what the entry points read (a JSON number, a CSV cell already turned into a
    ``Decimal``, a string); never a bool. Raises :class:`CheckError` for anything else or
    for an amount that is negative, not finite or too large to store.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise CheckError("must be an amount, like 1250.50")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise CheckError("must be an amount, like 1250.50") from None
    if not amount.is_finite():
        raise CheckError("must be an amount, like 1250.50")
    if amount < 0:
        raise CheckError("must not be negative")
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if rounded > MAX_MONEY:
        raise CheckError(f"at most {MAX_MONEY:,}")
    return rounded


# --- leaving ----------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(value: object) -> object:
    """Neutralise text a spreadsheet would run as a formula (OWASP CSV injection advice).

    Every CSV Loyalty writes passes each cell through this, as customers write the text.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
