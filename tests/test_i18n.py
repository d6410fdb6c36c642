"""The interface's own strings exist in both languages and fill in cleanly."""

from __future__ import annotations

import datetime as dt
import string

import pytest

from loyalty.i18n import PLURALS, TEXTS, format_date, plural, text


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_string_has_both_languages_with_the_same_placeholders(key):
    fields = {
        lang: {f for _, f, _, _ in string.Formatter().parse(TEXTS[key][lang]) if f}
        for lang in ("da", "en")
    }
    assert fields["da"] == fields["en"]


def test_text_falls_back_to_english():
    assert text("submit", "sv") == "Send answers"


def test_dates_as_people_write_them():
    day = dt.date(2026, 12, 24)
    assert format_date(day, "da") == "24. december 2026"
    assert format_date(day, "en") == "24 December 2026"


@pytest.mark.parametrize("key", sorted(PLURALS))
def test_every_plural_has_both_forms_in_both_languages_with_the_same_placeholders(key):
    fields = {
        (lang, form): {f for _, f, _, _ in string.Formatter().parse(template) if f}
        for lang in ("da", "en")
        for form, template in enumerate(PLURALS[key][lang])
    }
    assert len(set(map(frozenset, fields.values()))) == 1
    assert {"n"} <= fields["en", 0]


@pytest.mark.parametrize(
    ("language", "n", "expected"),
    [
        ("en", 1, "There is 1 problem with your answers. Please see the marked question."),
        ("en", 2, "There are 2 problems with your answers. Please see the marked questions."),
        ("en", 0, "There are 0 problems with your answers. Please see the marked questions."),
        ("da", 1, "Der er 1 fejl i dine svar. Ret venligst det markerede spørgsmål herunder."),
        ("da", 3, "Der er 3 fejl i dine svar. Ret venligst de markerede spørgsmål herunder."),
        ("sv", 1, "There is 1 problem with your answers. Please see the marked question."),
    ],
)
def test_counts_take_the_right_plural_form(language, n, expected):
    assert plural("error_summary", language, n) == expected
