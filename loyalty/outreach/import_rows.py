"""Reading an import file: a CSV file's bytes into ``(line, row)`` pairs, and a row's cells
into checked values, each problem a :class:`RowError` naming its line and column.

Apart from the kinds of import (:mod:`.imports`) because it knows nothing of what a row
means or where it goes, only how a spreadsheet writes it. Pure: no Flask, no database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import typing as t
from collections import Counter
from decimal import Decimal, InvalidOperation

from .. import checks


class RowError(Exception):
    """One row's problem: its line in the file, the column at fault and why."""

    def __init__(self, column: str | None, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.column, self.message, self.line = column, message, line

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class ImportFailed(Exception):
    """The file was not imported; ``errors`` says why, row by row."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


def read_csv(data: bytes, required: t.Sequence[str], optional: t.Sequence[str]):
    """``(line, row)`` pairs from a CSV file's bytes; raises :class:`ImportFailed` for a
    file that is not UTF-8 or whose header lacks or adds columns. Comma or semicolon
    separated (a spreadsheet set to Danish writes semicolons)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFailed([RowError(None, "not UTF-8; save it as 'CSV UTF-8'", line)]) from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ImportFailed([RowError(None, "the file is empty", 1)]) from None
    except csv.Error as exc:
        raise ImportFailed([RowError(None, f"not CSV: {exc}", 1)]) from None
    problems = [RowError(c, "unknown column", 1) for c in header if c not in (*required, *optional)]
    problems += [RowError(c, "column is missing", 1) for c in required if c not in header]
    problems += [
        RowError(c, "column appears twice", 1) for c, n in Counter(header).items() if n > 1
    ]
    if problems:
        expected = ", ".join(required) + (f" (optional: {', '.join(optional)})" if optional else "")
        problems[-1].message += f"; expected columns: {expected}"
        raise ImportFailed(problems)
    rows, errors = [], []
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(None, f"not CSV: {exc}", line))
            break
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            errors.append(RowError(None, f"{len(cells)} cells; the header has {len(header)}", line))
            continue
        rows.append((line, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
    return rows, errors


def parse_number(row: dict[str, str], column: str, kind: type = Decimal):
    value = row.get(column, "")
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise RowError(column, f"{value!r} is not a number") from None
    if not number.is_finite():
        raise RowError(column, f"{value!r} is not a number")
    if kind is int:
        if number != number.to_integral_value():
            raise RowError(column, f"{value!r} is not a whole number")
        return int(number)
    return number


def parse_datetime(row: dict[str, str], column: str) -> dt.datetime:
    """ISO 8601; a time without a zone is taken as UTC, a bare date as midnight UTC."""
    value = row.get(column, "")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        message = f"{value!r} is not a date and time like 2026-11-22T14:45:00Z"
        raise RowError(column, message) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise RowError(column, f"{value!r} is out of range") from None


def parse_choice(row: dict[str, str], column: str, choices: t.Sequence[str]) -> str:
    value = row.get(column, "").lower()
    if value not in choices:
        raise RowError(column, f"must be one of {', '.join(choices)}")
    return value


def parse_text(row: dict[str, str], column: str, max_length: int = 200, *, required=True) -> str:
    value = row.get(column, "")
    if not value and required:
        raise RowError(column, "must not be empty")
    if len(value) > max_length:
        raise RowError(column, f"at most {max_length} characters")
    if not checks.is_one_line(value):
        raise RowError(column, "must not contain line breaks or control characters")
    return value
